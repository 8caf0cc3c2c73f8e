# The two commands a newcomer needs: `make run` and `make test`. See README.md.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The demo: debug pages, probes every 5 s, incidents opened by detection published,
# webhooks allowed to receivers on this machine.
DEMO_ENV := DJANGO_DEBUG=1 PROBE_INTERVAL_SECONDS=5 PROBE_AUTO_PUBLISH=1 \
	NOTIFY_WEBHOOK_ALLOW_LOOPBACK=1 STATUSPAGE_PUBLIC_URL=http://$(HOST):$(PORT)

.PHONY: run test test-faults install lint check bench-data bench-impact bench-smoke clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## make run: install, migrate, seed the demo fleet (idempotent), then start web, a Celery
## worker, beat, a probe agent per demo region and the fleet simulator (honcho, see Procfile).
run: $(STAMP)
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py seed_demo
	$(DEMO_ENV) $(PY) manage.py seed_demo_users
	$(DEMO_ENV) $(PY) manage.py seed_probe_regions
	$(DEMO_ENV) $(PY) manage.py seed_agent_tokens
	$(DEMO_ENV) $(PY) manage.py rebuild_snapshot
	@echo "Status page: http://$(HOST):$(PORT)/   Operators: http://$(HOST):$(PORT)/admin/"
	@echo "Customers: http://$(HOST):$(PORT)/accounts/login/  alice / alice-demo-password (owner of acme.com),"
	@echo "  bob / bob-demo-password (member of globex.com), carol / carol-demo-password (no tailnet);"
	@echo "  staff: operator / operator-demo-password. Invitation and reset emails print on this console."
	@echo "Break a shard:  $(PY) manage.py fault use3 down --for 120s"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(DEMO_ENV) PORT=$(PORT) $(PY) -m honcho start -f Procfile

## make test: the whole suite; SQLite by default, PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set.
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## make test-faults: the fault suite (faults/): gunicorn, a Celery worker, beat and the
## simulator behind a TCP proxy of the suite's own that refuses or hangs PostgreSQL,
## the cache and the broker. Needs the servers: FAULTS_PG_ADMIN_URL (a superuser; the
## suite drops and creates its own database `faults`) and FAULTS_REDIS_URL (dbs 11, 12).
FAULTS_PG_ADMIN_URL ?= postgres://postgres@127.0.0.1:5432/postgres
FAULTS_REDIS_URL ?= redis://127.0.0.1:6379
test-faults: $(STAMP)
	FAULTS_PG_ADMIN_URL=$(FAULTS_PG_ADMIN_URL) FAULTS_REDIS_URL=$(FAULTS_REDIS_URL) \
		$(PY) -m pytest faults --rootdir=. -o testpaths=faults -p no:django -p no:randomly \
		-p no:xdist -W ignore::pytest.PytestConfigWarning -v -s $(FAULTS_ARGS)

## make test-regions: the regions suite (regions/): gunicorn, a Celery worker and the
## simulator on this host, a probe agent per region in a network namespace of its own;
## links cut, the page stopped, an agent killed. Needs root (ip netns, veth) and the
## servers: REGIONS_PG_ADMIN_URL (a superuser; the suite drops and creates its own
## database `regions`) and REGIONS_REDIS_URL (dbs 13, 14).
REGIONS_PG_ADMIN_URL ?= postgres://postgres@127.0.0.1:5432/postgres
REGIONS_REDIS_URL ?= redis://127.0.0.1:6379
.PHONY: test-regions
test-regions: $(STAMP)
	REGIONS_PG_ADMIN_URL=$(REGIONS_PG_ADMIN_URL) REGIONS_REDIS_URL=$(REGIONS_REDIS_URL) \
		$(PY) -m pytest regions --rootdir=. -o testpaths=regions -p no:django -p no:randomly \
		-p no:xdist -W ignore::pytest.PytestConfigWarning -v -s $(REGIONS_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy .

check: $(STAMP)
	$(PY) manage.py makemigrations --check --dry-run

BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench

## make bench-data: build the 1M-tailnet benchmark dataset once (PostgreSQL).
bench-data: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/data.py $(BENCH_ARGS)

## make bench-impact: affected-tailnet recompute and tailnet history vs bare SQL.
bench-impact: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/impact.py $(BENCH_ARGS)

## make bench-probes: a 1,000-shard probe round vs bare aiohttp; sample ingestion vs COPY.
.PHONY: bench-probes
bench-probes: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/probes.py $(BENCH_ARGS)

## make bench-page: the public page under wrk: ours vs a bare WSGI app vs nginx (installs wrk/nginx).
BENCH_PAGE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench_page
.PHONY: bench-page
bench-page: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_PAGE_DATABASE_URL) $(PY) bench/page.py $(BENCH_ARGS)

## make bench-report: outage report submissions/s through the form (CSRF, rate limits, triage published) vs a bare INSERT.
BENCH_REPORT_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench_report
BENCH_REPORT_REDIS_URL ?= redis://127.0.0.1:6379/7
.PHONY: bench-report
bench-report: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_REPORT_DATABASE_URL) BENCH_REDIS_URL=$(BENCH_REPORT_REDIS_URL) $(PY) bench/report.py $(BENCH_ARGS)

## make bench-tailnet: one tailnet's page and /uptime: its queries vs bare SQL; gunicorn under wrk (installs wrk).
.PHONY: bench-tailnet
bench-tailnet: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/tailnet.py $(BENCH_ARGS)

## make bench-fleet: fleet events through the service and a whole-map reconcile vs bare SQL, on copies of the dataset.
.PHONY: bench-fleet
bench-fleet: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/fleet.py $(BENCH_ARGS)

## make bench-notify: 100,000 affected tailnets' webhooks: outbox fan-out and deliveries vs bare SQL / bare aiohttp.
.PHONY: bench-notify
bench-notify: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/notify.py $(BENCH_ARGS)

## make bench-reliability: the 12-month reliability report and one tailnet's SLA statement vs bare SQL, on a copy extended to 500 incidents.
.PHONY: bench-reliability
bench-reliability: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/reliability.py $(BENCH_ARGS)

## make bench-agent: the probe agent at 1,000 shards: samples/s into the ingestion API vs bare aiohttp, and its RSS.
.PHONY: bench-agent
bench-agent: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/agent.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var db.sqlite3 db.sqlite3-wal db.sqlite3-shm staticfiles
