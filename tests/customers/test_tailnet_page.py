"""A tailnet's own page, as alice (owner of acme, on US East 1) sees it: "were we
affected?" first, then the incidents that touched acme, its uptime stitched across
live migrations, per month and as CSV, its shard's latency, and its API tokens."""

import csv
import hashlib
import io
import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from customers.queries import tailnet_page
from fleet.services import tailnet_delete, tailnet_migrate
from incidents.services import WindowSpec, incident_create, incident_post_update
from plumbing.models import ApiToken
from probes.models import ProbeRegion, ProbeRollup
from probes.rollup import histogram
from public import snapshot
from tests.conftest import T0

M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)
# Pages are looked at a day after T0, when the outages of T0 are over.
NOW = T0 + D


@pytest.fixture
def at_now(time_machine):
    time_machine.move_to(NOW, tick=False)
    return NOW


def outage(shards, start, end, *, title="Coordination server unavailable", level="outage", **kw):
    """A published incident with one window per shard (its recompute runs on commit)."""
    return incident_create(
        title=title,
        body="We are investigating failed logins.",
        started_at=start,
        shard_impacts=[WindowSpec(s, level, start, end) for s in shards],
        published=kw.pop("published", True),
        at=start,
        **kw,
    )


def resolve(incident, at):
    incident_post_update(incident=incident, status="resolved", body="Fixed.", at=at)


def text_of(response) -> str:
    """The page's words, without tags or repeated whitespace."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def signed_in(client, person):
    client.force_login(person)
    return client


# --- Were we affected? ------------------------------------------------------------------------


def test_alice_sees_that_acme_is_not_affected_right_now(client, people, at_now):
    response = signed_in(client, people["alice"]).get("/t/acme/")

    assert response.status_code == 200
    words = text_of(response)
    assert "Were we affected?" in words
    assert "Not right now: your shard, US East 1, is operational." in words
    assert "No incident has touched this tailnet." in words
    # Customers see the shard's public name, never its internal identifier.
    assert "use1" not in response.content.decode()


def test_an_outage_on_acmes_shard_says_what_works_and_what_is_blocked(
    client, people, at_now, committed
):
    with committed():
        incident = outage(["use1"], NOW - 20 * M, None, title="Logins failing in US East")

    words = text_of(signed_in(client, people["alice"]).get("/t/acme/"))

    assert "Yes, right now: major outage on your shard, US East 1." in words
    assert "Logins failing in US East" in words
    assert (
        "Existing connections keep working; logging in, approving devices and changing ACLs "
        "are blocked." in words
    )
    page = signed_in(client, people["alice"]).get("/t/acme/").content.decode()
    assert f'href="/incidents/{incident.pk}/"' in page
    # History: 20 minutes so far.
    assert "20 min so far" in words


def test_an_outage_elsewhere_is_not_acmes(client, people, at_now, committed):
    with committed():
        outage(["use2"], NOW - 20 * M, None, title="Trouble on US East 2")
        outage(["euw1"], T0, T0 + 30 * M, title="Trouble in EU West")

    response = signed_in(client, people["alice"]).get("/t/acme/")

    words = text_of(response)
    assert "Not right now: your shard, US East 1, is operational." in words
    assert "Trouble on US East 2" not in words
    assert "Trouble in EU West" not in words
    assert "No incident has touched this tailnet." in words


def test_a_slow_shard_is_slow_not_down(client, people, at_now, committed):
    with committed():
        outage(["use1"], NOW - 5 * M, None, level="degraded", title="Slow ACL changes")

    words = text_of(signed_in(client, people["alice"]).get("/t/acme/"))

    assert "Yes, right now: degraded performance on your shard, US East 1." in words
    assert "Slow, not down" in words
    assert "are slow, not blocked" in words


def test_maintenance_scheduled_on_acmes_shard_is_announced(client, people, at_now, committed):
    with committed():
        incident_create(
            title="Database upgrade of US East 1",
            body="A short planned outage.",
            kind="maintenance",
            impact="maintenance",
            scheduled_for=NOW + 2 * D,
            scheduled_until=NOW + 2 * D + H,
            shard_impacts=[WindowSpec("use1", "outage", NOW + 2 * D, NOW + 2 * D + 30 * M)],
            published=True,
            at=NOW - H,
        )
        incident_create(
            title="Upgrade of EU West 1",
            body="Elsewhere.",
            kind="maintenance",
            impact="maintenance",
            scheduled_for=NOW + D,
            scheduled_until=NOW + D + H,
            shard_impacts=[WindowSpec("euw1", "outage", NOW + D, NOW + D + H)],
            published=True,
            at=NOW - H,
        )

    words = text_of(signed_in(client, people["alice"]).get("/t/acme/"))

    assert "Maintenance on your shard" in words
    assert "Database upgrade of US East 1" in words
    assert "Planned outage" in words
    assert "logging in, approving devices and changing ACLs will be blocked" in words
    assert "Upgrade of EU West 1" not in words
    assert "Not right now" in words  # it is upcoming, not happening


def test_drafts_are_never_shown(client, people, at_now, committed):
    with committed():
        outage(["use1"], NOW - 20 * M, None, title="Draft: maybe down", published=False)

    words = text_of(signed_in(client, people["alice"]).get("/t/acme/"))

    assert "Draft: maybe down" not in words
    assert "Not right now" in words


# --- History and migration stitching ------------------------------------------------------


def test_acme_migrated_off_five_minutes_into_a_24_minute_outage_shows_5_minutes(
    client, people, at_now, committed
):
    with committed():
        incident = outage(["use1"], T0, T0 + 24 * M, title="Coordination outage in US East")
        tailnet_migrate(tailnet=people["acme"], to_shard="use2", at=T0 + 5 * M)
        resolve(incident, T0 + 24 * M)

    response = signed_in(client, people["alice"]).get("/t/acme/")

    words = text_of(response)
    html = response.content.decode()
    row = re.search(rf'<tr id="history-{incident.pk}">(.*?)</tr>', html, re.S)
    assert row is not None
    row_text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(1)))
    assert "Outage on US East 1" in row_text
    assert re.search(r'class="affected-for"[^>]*>5 min<', row.group(0))
    assert "Coordination shard: US East 2 (us-east)" in words
    # The migration is marked under the bar and listed.
    assert "moved from US East 1 to US East 2" in words
    assert html.count('class="recent moved"') + html.count('class=" moved"') == 1
    # That day's bar: 5 outage minutes, not 24.
    day = re.search(r'<div class="tip"[^>]*id="t-tailnet-20260105".*?</div>', html, re.S)
    assert day is not None
    assert "Outage: 5 min" in day.group(0)


def test_bob_on_globex_does_not_see_acmes_incidents_as_his(client, people, at_now, committed):
    with committed():
        outage(["use1"], T0, T0 + 24 * M, title="US East 1 down")

    words = text_of(signed_in(client, people["bob"]).get("/t/globex/"))

    assert "US East 1 down" not in words
    assert "No incident has touched this tailnet." in words


# --- A deleted tailnet ------------------------------------------------------------------------


def test_bob_still_sees_globex_and_its_history_after_it_was_deleted(
    client, people, at_now, committed
):
    with committed():
        resolve(outage(["euw1"], T0, T0 + 30 * M, title="EU West down"), T0 + 30 * M)
    bob = signed_in(client, people["bob"])
    assert "was deleted" not in text_of(bob.get("/t/globex/"))  # and now cached

    with committed():
        tailnet_delete(tailnet=people["globex"], at=T0 + 2 * H)

    response = bob.get("/t/globex/")
    assert response.status_code == 200
    words = text_of(response)
    assert "This tailnet was deleted on Jan 5, 2026, 12:00 UTC" in words
    assert "Not now: no coordination shard serves this tailnet." in words
    assert "Coordination shard:" not in words
    # Its history stays: the outage it was affected by, for its 30 minutes.
    assert "EU West down" in words
    assert "30 min" in words

    listed = text_of(bob.get("/t/"))
    assert "globex.com Member · deleted on Jan 5, 2026, 12:00 UTC Deleted" in listed
    assert "Deleted" not in text_of(signed_in(client, people["alice"]).get("/t/"))


# --- Uptime per month and the CSV ---------------------------------------------------------


def test_the_month_table_counts_acmes_outage_minutes(client, people, at_now, committed):
    with committed():
        incident = outage(["use1"], T0, T0 + 24 * M)
        tailnet_migrate(tailnet=people["acme"], to_shard="use2", at=T0 + 5 * M)
        resolve(incident, T0 + 24 * M)

    html = signed_in(client, people["alice"]).get("/t/acme/").content.decode()

    row = re.search(r"<tr><th scope=\"row\">2026-01</th>(.*?)</tr>", html, re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    # Jan 1 00:00 .. Jan 6 10:00 (now): 7800 minutes, 5 of them down.
    assert cells[1:] == ["5 min", "0 s", "0 s", "5 min"]
    # 99.9358…% floored, never rounded up.
    assert cells[0] == "99.93%"


def test_a_65_second_outage_reads_1_min_5_s_in_the_history_and_the_month_table(
    client, people, at_now, committed
):
    start = T0 - 4 * 60 * M - 40 * M - timedelta(seconds=35)  # 05:19:25
    with committed():
        incident = outage(["use1"], start, start + timedelta(seconds=65))
        resolve(incident, start + 2 * M)

    html = signed_in(client, people["alice"]).get("/t/acme/").content.decode()

    row = re.search(rf'<tr id="history-{incident.pk}">(.*?)</tr>', html, re.S)
    assert re.search(r'class="affected-for"[^>]*>1 min 5 s<', row.group(0))
    month = re.search(r"<tr><th scope=\"row\">2026-01</th>(.*?)</tr>", html, re.S)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", month.group(1))
    assert cells[1:] == ["1 min 5 s", "0 s", "0 s", "1 min 5 s"]
    day = re.search(r'<div class="tip"[^>]*id="t-tailnet-20260105".*?</div>', html, re.S)
    assert "Outage: 1 min 5 s" in day.group(0)


def _csv(response):
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_csv_has_a_row_per_month_and_a_total(client, people, at_now, committed):
    with committed():
        outage(["use1"], T0, T0 + 24 * M)
    response = signed_in(client, people["alice"]).get(
        "/t/acme/uptime.csv", {"from": "2025-12-01", "to": "2026-01-05"}
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="acme-uptime-2025-12-01-to-2026-01-05.csv"'
    )
    assert "no-store" in response["Cache-Control"]
    rows = _csv(response)
    assert rows[0] == [
        "tailnet",
        "month",
        "first_day",
        "last_day",
        "minutes_with_data",
        "outage_minutes",
        "partial_minutes",
        "degraded_minutes",
        "affected_minutes",
        "downtime_minutes",
        "uptime_pct",
        "seconds_with_data",
        "outage_seconds",
        "partial_seconds",
        "degraded_seconds",
        "affected_seconds",
        "downtime_seconds",
    ]
    december, january, total = rows[1:]
    assert december == ["acme.com", "2025-12", "2025-12-01", "2025-12-31", "44640.0", "0.0",
                        "0.0", "0.0", "0.0", "0.0", "100.0", "2678400", "0", "0", "0", "0",
                        "0.0"]  # fmt: skip
    assert january == ["acme.com", "2026-01", "2026-01-01", "2026-01-05", "7200.0", "24.0",
                       "0.0", "0.0", "24.0", "24.0", "99.6666", "432000", "1440", "0", "0",
                       "1440", "1440.0"]  # fmt: skip
    assert total[1:6] == ["total", "2025-12-01", "2026-01-05", str(44640.0 + 7200), "24.0"]


def test_the_csv_defuses_formulas_in_the_tailnet_name(client, people, at_now):
    acme = people["acme"]
    acme.display_name = '=HYPERLINK("http://evil.example","click")'
    acme.save(update_fields=["display_name"])

    rows = _csv(signed_in(client, people["alice"]).get("/t/acme/uptime.csv"))

    assert all(row[0] == "'" + acme.display_name for row in rows[1:])
    assert len(rows) >= 3  # header, months, total


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2026-13-01"}, "from: Date has wrong format"),
        ({"to": "yesterday"}, "to: Date has wrong format"),
        ({"from": "2026-01-05", "to": "2026-01-01"}, "from: 2026-01-05 is after `to`"),
        ({"from": "2024-01-01", "to": "2026-01-05"}, "ask for at most 400"),
        ({"to": "2026-02-01"}, "to: 2026-02-01 is in the future"),
    ],
)
def test_a_bad_csv_range_is_a_400_that_says_why(client, people, at_now, query, message):
    response = signed_in(client, people["alice"]).get("/t/acme/uptime.csv", query)

    assert response.status_code == 400
    assert message in response.content.decode()


# --- Latency ----------------------------------------------------------------------------


def _rollup(shard, region, hour, latencies):
    ProbeRollup.objects.create(
        shard=shard,
        region=region,
        granularity="hour",
        bucket_start=hour,
        count=len(latencies),
        failures=0,
        latency_sum_ms=sum(latencies),
        latency_max_ms=max(latencies),
        histogram=histogram(latencies),
    )


def test_the_latency_chart_is_an_svg_with_its_table(client, people, at_now):
    ams = ProbeRegion.objects.create(slug="ams", name="Amsterdam")
    nyc = ProbeRegion.objects.create(slug="nyc", name="New York")
    hour = NOW - 3 * H
    _rollup(people["use1"], ams, hour, [40.0] * 19 + [400.0])
    _rollup(people["use1"], nyc, hour, [45.0] * 20)
    _rollup(people["euw1"], ams, hour, [900.0] * 20)  # not acme's shard

    response = signed_in(client, people["alice"]).get("/t/acme/")

    html = response.content.decode()
    assert '<svg class="latency-chart"' in html
    assert "<script" not in html.split('id="latency"')[1].split("</section>")[0]
    table = re.search(r'<details class="latency-table">(.*?)</details>', html, re.S)
    assert table is not None
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</th>(.*?)</tr>", table.group(1))
    assert len(rows) == 1
    when, cells = rows[0]
    assert when == hour.strftime("%Y-%m-%d %H:%M")
    # 39 probes answered within 50 ms and one of 40 took 400: only p99 sees it.
    assert re.findall(r"<td[^>]*>(.*?)</td>", cells) == [
        "US East 1", "50 ms", "50 ms", "500 ms", "40", "0",
    ]  # fmt: skip
    assert "The numbers behind the chart (1 hour)" in text_of(response)


def test_latency_follows_acme_across_a_migration(people, at_now):
    ams = ProbeRegion.objects.create(slug="ams", name="Amsterdam")
    moved = NOW - 5 * H
    tailnet_migrate(tailnet=people["acme"], to_shard="use2", at=moved)
    _rollup(people["use1"], ams, moved - 2 * H, [30.0] * 10)
    _rollup(people["use1"], ams, moved + H, [900.0] * 10)  # left already: not acme's
    _rollup(people["use2"], ams, moved + H, [150.0] * 10)
    _rollup(people["use2"], ams, moved - 2 * H, [900.0] * 10)  # not there yet

    hours = {h.start: h for h in tailnet_page(tailnet=people["acme"], now=NOW).latency}

    assert (hours[moved - 2 * H].shard_name, hours[moved - 2 * H].p50_ms) == ("US East 1", 30)
    assert (hours[moved + H].shard_name, hours[moved + H].p50_ms) == ("US East 2", 150)
    assert len(hours) == 7 * 24


def test_alice_sees_p99_beside_p50_and_p95_in_the_chart_and_its_table(client, people, at_now):
    ams = ProbeRegion.objects.create(slug="ams", name="Amsterdam")
    slow, quiet = NOW - 5 * H, NOW - 4 * H
    # 100 probes: 90 quick, 6 slower, 4 very slow.
    _rollup(people["use1"], ams, slow, [40.0] * 90 + [120.0] * 6 + [900.0] * 4)
    _rollup(people["use1"], ams, quiet, [25.0] * 100)

    response = signed_in(client, people["alice"]).get("/t/acme/")

    html = response.content.decode()
    section = html.split('id="latency"')[1].split("</section>")[0]
    assert section.count('<path class="line ') == 3
    for line in ("p50", "p95", "p99"):
        assert f'<path class="line {line}" d="M' in section
    assert "99th percentile (p99, dotted)" in section
    caption = re.search(r"<figcaption>(.*?)</figcaption>", section, re.S)
    assert caption is not None
    assert re.findall(r'<span class="key key-(\w+)">(.*?)</span>', caption.group(1)) == [
        ("p50", "p50 (median)"), ("p95", "p95"), ("p99", "p99"),
    ]  # fmt: skip
    header = re.search(r"<thead>(.*?)</thead>", section, re.S)
    assert header is not None
    assert re.findall(r"<th[^>]*>(.*?)</th>", header.group(1)) == [
        "Hour (UTC)", "Shard", "p50", "p95", "p99", "Probes", "Failed",
    ]  # fmt: skip
    rows = dict(re.findall(r'<tr><th scope="row">(.*?)</th>(.*?)</tr>', section))
    assert re.findall(r"<td[^>]*>(.*?)</td>", rows[slow.strftime("%Y-%m-%d %H:%M")]) == [
        "US East 1", "50 ms", "150 ms", "1000 ms", "100", "0",
    ]  # fmt: skip
    assert re.findall(r"<td[^>]*>(.*?)</td>", rows[quiet.strftime("%Y-%m-%d %H:%M")]) == [
        "US East 1", "30 ms", "30 ms", "30 ms", "100", "0",
    ]  # fmt: skip
    assert "The numbers behind the chart (2 hours)" in text_of(response)


def test_an_hour_without_a_good_probe_has_no_p99(client, people, at_now):
    ams = ProbeRegion.objects.create(slug="ams", name="Amsterdam")
    measured, failed = NOW - 3 * H, NOW - 2 * H
    _rollup(people["use1"], ams, measured, [40.0] * 20)
    ProbeRollup.objects.create(
        shard=people["use1"],
        region=ams,
        granularity="hour",
        bucket_start=failed,
        count=20,
        failures=20,
        histogram=histogram([]),
    )

    hours = {h.start: h for h in tailnet_page(tailnet=people["acme"], now=NOW).latency}
    response = signed_in(client, people["alice"]).get("/t/acme/")

    assert (hours[failed].p50_ms, hours[failed].p95_ms, hours[failed].p99_ms) == (None,) * 3
    assert (hours[failed].samples, hours[failed].failures) == (20, 20)
    assert hours[measured].p99_ms == 50
    assert hours[NOW - 4 * H].p99_ms is None  # no probe at all
    section = response.content.decode().split('id="latency"')[1].split("</section>")[0]
    listed = re.findall(r'<tr><th scope="row">(.*?)</th>', section)
    assert listed == [measured.strftime("%Y-%m-%d %H:%M")]


# --- Constant queries -----------------------------------------------------------------------


def empty_cache():
    """A new, empty cache: what a request reads with nothing kept yet."""
    empty = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": uuid4().hex}
    return override_settings(CACHES={"default": empty})


def _queries(client, path):
    """The queries of one request with nothing in the cache."""
    with empty_cache(), CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return len(captured)


def test_the_page_makes_as_many_queries_for_many_incidents_and_migrations_as_for_one(
    client, people, at_now, committed
):
    alice = signed_in(client, people["alice"])
    ams = ProbeRegion.objects.create(slug="ams", name="Amsterdam")
    _rollup(people["use1"], ams, NOW - 2 * H, [40.0])
    with committed():
        resolve(outage(["use1"], T0 - 10 * D, T0 - 10 * D + 10 * M), T0 - 10 * D + 10 * M)
    one = {path: _queries(alice, path) for path in ("/t/acme/", "/t/acme/uptime.csv", "/t/")}

    shards = ["use2", "use1"]
    with committed():
        for n in range(12):
            start = T0 - (9 - n / 2) * D
            resolve(outage(["use1", "use2"], start, start + 30 * M), start + 30 * M)
            tailnet_migrate(tailnet=people["acme"], to_shard=shards[n % 2], at=start + 10 * M)
        outage(["use1", "use2"], NOW - 10 * M, None, title="Now")
        incident_create(
            title="Planned",
            body="Planned.",
            kind="maintenance",
            impact="maintenance",
            scheduled_for=NOW + D,
            scheduled_until=NOW + D + H,
            components={people["us"]: "under_maintenance"},
            published=True,
            at=NOW,
        )
    for region in ("nyc", "sfo"):
        other = ProbeRegion.objects.create(slug=region, name=region)
        for hour in range(1, 30):
            _rollup(people["use1"], other, NOW - hour * H, [40.0, 80.0])
            _rollup(people["use2"], other, NOW - hour * H, [40.0, 80.0])
    many = {path: _queries(alice, path) for path in one}

    assert many == one
    # session, user, the door, then the page's own reads (customers.queries.tailnet_page).
    assert one["/t/acme/"] == 3 + 8 + 1  # session, user, door; page reads; reports


# --- Never cached for others, never in the public snapshot ----------------------------------


def test_customer_pages_are_private_and_not_in_the_public_snapshot(client, people, at_now):
    alice = signed_in(client, people["alice"])
    for path in ("/t/", "/t/acme/", "/t/acme/uptime.csv", "/t/acme/tokens/", "/t/globex/"):
        response = alice.get(path)
        cache_control = response["Cache-Control"]
        assert "private" in cache_control, path
        assert "no-store" in cache_control, path
        assert not snapshot.is_public_path(path)
        assert "ETag" not in response


def test_the_list_shows_alices_tailnets_only(client, people, at_now, committed):
    with committed():
        outage(["use1"], NOW - 5 * M, None)
    words = text_of(signed_in(client, people["alice"]).get("/t/"))

    assert "acme.com" in words
    assert "on US East 1 (us-east)" in words
    assert "Major outage" in words
    assert "globex" not in words


def test_carol_without_a_tailnet_is_told_how_to_get_one(client, people):
    words = text_of(signed_in(client, people["carol"]).get("/t/"))

    assert "You are not a member of any tailnet yet." in words


def test_the_page_lists_no_reports_until_the_tailnet_files_one(client, people, at_now):
    response = signed_in(client, people["alice"]).get("/t/acme/")

    assert response.context["reports"] == []
    assert "No reports from your tailnet." in text_of(response)


# --- API tokens -----------------------------------------------------------------------------


def test_alice_creates_a_token_sees_it_once_and_revokes_it(client, people, at_now):
    alice = signed_in(client, people["alice"])

    created = alice.post("/t/acme/tokens/", {"action": "create", "name": "Grafana"})

    assert created.status_code == 201
    secret = created.context["secret"]
    assert secret.startswith("sp_")
    assert secret in created.content.decode()
    token = ApiToken.objects.get(name="Grafana")
    assert (token.scope, token.tailnet, token.created_by) == (
        "tailnet",
        people["acme"],
        people["alice"],
    )
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {token.digest, token.prefix}
    again = alice.get("/t/acme/tokens/")
    assert secret not in again.content.decode()
    assert "Never" in text_of(again)

    client.logout()
    used = client.get("/api/v1/tailnets/acme/status", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert used.status_code == 200
    alice = signed_in(client, people["alice"])
    assert "Never" not in text_of(alice.get("/t/acme/tokens/"))

    revoked = alice.post("/t/acme/tokens/", {"action": "revoke", "token": token.pk}, follow=True)

    assert "Token “Grafana” revoked: it no longer works." in text_of(revoked)
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.logout()
    refused = client.get("/api/v1/tailnets/acme/status", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert refused.status_code == 401


def test_a_token_needs_a_name(client, people, at_now):
    response = signed_in(client, people["alice"]).post(
        "/t/acme/tokens/", {"action": "create", "name": "  "}
    )

    assert response.status_code == 400
    assert "This field is required." in text_of(response)
    assert not ApiToken.objects.exists()


def test_a_member_sees_tokens_but_cannot_create_or_revoke_them(client, people, at_now):
    bob = signed_in(client, people["bob"])
    from plumbing.tokens import api_token_create

    token, _ = api_token_create(name="CI", scope="tailnet", tailnet=people["globex"])

    page = bob.get("/t/globex/tokens/")
    assert page.status_code == 200
    assert "CI" in text_of(page)
    assert "Only the tailnet's owners and admins can create or revoke tokens." in text_of(page)
    assert bob.post("/t/globex/tokens/", {"action": "create", "name": "x"}).status_code == 403
    assert bob.post("/t/globex/tokens/", {"action": "revoke", "token": token.pk}).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_alice_cannot_revoke_globexs_token_through_acme(client, people, at_now):
    from plumbing.tokens import api_token_create

    token, _ = api_token_create(name="CI", scope="tailnet", tailnet=people["globex"])

    response = signed_in(client, people["alice"]).post(
        "/t/acme/tokens/", {"action": "revoke", "token": token.pk}
    )

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_times_on_the_page_are_utc(client, people, at_now):
    html = signed_in(client, people["alice"]).get("/t/acme/").content.decode()

    stamp = datetime(2026, 1, 6, 10, 0, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'<time class="utc" datetime="{stamp}"' in html


def test_no_template_syntax_reaches_alices_pages(client, people, at_now, committed):
    """A template comment spanning lines (``{# … #}`` is one line only) once showed on
    the page as text; nothing of the template language may reach a customer."""
    with committed():
        outage(["use1"], NOW - 10 * M, None)
    alice = signed_in(client, people["alice"])
    for path in ("/t/", "/t/acme/", "/t/acme/members/", "/t/acme/tokens/", "/api/docs/"):
        html = alice.get(path).content.decode()
        for syntax in ("{#", "#}", "{%", "%}", "{{", "}}"):
            assert syntax not in html, (path, syntax)


def test_on_a_phone_each_month_figure_says_what_it_is(client, people, at_now):
    """Narrow screens hide the table's header row; each cell carries its column's name."""
    html = signed_in(client, people["alice"]).get("/t/acme/").content.decode()
    sla = re.search(r'<table class="shards sla">.*?</table>', html, re.S).group(0)
    first_row = re.search(r"<tbody>\s*<tr>(.*?)</tr>", sla, re.S).group(1)

    labels = re.findall(r'<td data-label="([^"]+)"', first_row)
    assert labels == ["Uptime", "Outage", "Partial outage", "Slow", "Downtime"]
