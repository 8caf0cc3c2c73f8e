"""One tailnet's API as alice's scripts use it: /api/v1/tailnets/<slug>/status,
/incidents, /uptime and /latency, with her session or acme's bearer token; its schema
and documentation page."""

import json
import math
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from customers import serializers
from fleet.services import tailnet_migrate
from plumbing.tokens import api_token_create
from tests.conftest import T0

from .test_tailnet_page import NOW, D, H, M, _rollup, outage, resolve

API = "/api/v1/tailnets"


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """Throttle counters live in the cache: a fresh one per test, never the file cache."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def at_now(time_machine):
    time_machine.move_to(NOW, tick=False)
    return NOW


@pytest.fixture
def acme_token(people):
    _, secret = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    return secret


@pytest.fixture
def script(acme_token):
    """alice's script: acme's bearer token, no session."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {acme_token}")
    return client


def fields(serializer) -> set[str]:
    return set(serializer().fields)


# --- /status -----------------------------------------------------------------------------


def test_status_says_acme_is_affected_now_in_plain_words(
    script, people, at_now, committed, settings
):
    settings.STATUSPAGE_PUBLIC_URL = "https://status.example.com"
    with committed():
        incident = outage(["use1"], NOW - 20 * M, None, title="Logins failing")

    response = script.get(f"{API}/acme/status")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == fields(serializers.TailnetStatusSerializer)
    assert body["tailnet"] == {"slug": "acme", "name": "acme.com"}
    assert body["shard"] == {"name": "US East 1", "region": "us-east"}
    assert (body["status"], body["affected"]) == ("major_outage", True)
    (item,) = body["incidents"]
    assert set(item) == fields(serializers.HappeningSerializer)
    assert item["id"] == incident.pk
    assert item["level"] == "outage"
    assert item["phase"] == "ongoing"
    assert item["headline"] == "Outage"
    assert item["what"] == (
        "Existing connections keep working; logging in, approving devices and changing ACLs "
        "are blocked."
    )
    assert item["url"] == f"https://status.example.com/incidents/{incident.pk}/"
    assert body["maintenance"] == []
    assert body["as_of"] == "2026-01-06T10:00:00Z"
    assert "private" in response["Cache-Control"]


def test_status_with_alices_session(client, people, at_now):
    client.force_login(people["alice"])

    body = client.get(f"{API}/acme/status").json()

    assert (body["status"], body["affected"], body["incidents"]) == ("operational", False, [])


# --- /incidents ----------------------------------------------------------------------------


def test_incidents_show_the_five_minutes_acme_was_on_the_failing_shard(
    script, people, at_now, committed
):
    with committed():
        incident = outage(["use1"], T0, T0 + 24 * M, title="US East 1 down")
        tailnet_migrate(tailnet=people["acme"], to_shard="use2", at=T0 + 5 * M)
        resolve(incident, T0 + 24 * M)
        outage(["euw1"], T0, T0 + 24 * M, title="EU West down")

    body = script.get(f"{API}/acme/incidents").json()

    assert set(body) == {"tailnet", "incidents"}
    (item,) = body["incidents"]
    assert set(item) == fields(serializers.TailnetIncidentSerializer)
    assert (item["id"], item["title"], item["level"]) == (incident.pk, "US East 1 down", "outage")
    assert (item["affected_seconds"], item["affected_minutes"]) == (300, 5.0)
    assert (item["affected_from"], item["affected_until"]) == (
        "2026-01-05T10:00:00Z",
        "2026-01-05T10:05:00Z",
    )
    assert item["windows"] == [
        {
            "shard": {"name": "US East 1", "region": "us-east"},
            "level": "outage",
            "starts_at": "2026-01-05T10:00:00Z",
            "ends_at": "2026-01-05T10:05:00Z",
            "seconds": 300,
        }
    ]
    assert item["url"].endswith(f"/incidents/{incident.pk}/")


# --- /uptime -------------------------------------------------------------------------------


def test_uptime_per_day_and_month_for_a_range(script, people, at_now, committed):
    with committed():
        incident = outage(["use1"], T0, T0 + 24 * M)
        tailnet_migrate(tailnet=people["acme"], to_shard="use2", at=T0 + 5 * M)
        resolve(incident, T0 + 24 * M)

    body = script.get(f"{API}/acme/uptime", {"from": "2025-12-31", "to": "2026-01-05"}).json()

    assert set(body) == fields(serializers.TailnetUptimeSerializer)
    assert (body["first_day"], body["last_day"]) == ("2025-12-31", "2026-01-05")
    assert [m["month"] for m in body["months"]] == ["2025-12", "2026-01"]
    assert body["months"][1] == {
        "month": "2026-01",
        "first_day": "2026-01-01",
        "last_day": "2026-01-05",
        "minutes_with_data": 5 * 1440,
        "outage_minutes": 5,
        "partial_minutes": 0,
        "degraded_minutes": 0,
        "affected_minutes": 5,
        "downtime_minutes": 5.0,
        "uptime_pct": 99.9305,  # 99.930555…, floored: never above the true value
        "seconds_with_data": 5 * 86400,
        "outage_seconds": 300,
        "partial_seconds": 0,
        "degraded_seconds": 0,
        "affected_seconds": 300,
        "downtime_seconds": 300.0,
    }
    assert len(body["days"]) == 6
    assert body["days"][-1]["date"] == "2026-01-05"
    assert body["days"][-1]["outage_minutes"] == 5
    assert body["total"]["minutes_with_data"] == 6 * 1440


def test_uptime_is_what_its_documented_serializer_would_give(script, people, at_now, committed):
    """/uptime builds its JSON by hand (fast); it must be exactly what the serializer
    in the schema gives for the same report, field for field."""
    from datetime import date

    from customers.queries import tailnet_uptime_report

    with committed():
        incident = outage(["use1"], T0, T0 + 24 * M)
        tailnet_migrate(tailnet=people["acme"], to_shard="use2", at=T0 + 5 * M)
        resolve(incident, T0 + 24 * M)
    body = script.get(f"{API}/acme/uptime", {"from": "2025-11-01", "to": "2026-01-05"}).json()

    report = tailnet_uptime_report(
        tailnet_id=people["acme"].pk,
        first_day=date(2025, 11, 1),
        last_day=date(2026, 1, 5),
        now=timezone.now(),
    )
    documented = serializers.TailnetUptimeSerializer(
        {
            "tailnet": body["tailnet"],
            "first_day": report.first_day,
            "last_day": report.last_day,
            "total": _tally(report.tally),
            "months": [
                {
                    "month": m.label,
                    "first_day": m.first_day,
                    "last_day": m.last_day,
                    **_tally(m.tally),
                }
                for m in report.months
            ],
            "days": [{"date": d.day, **_tally(d.tally)} for d in report.days],
        }
    ).data
    assert json.loads(json.dumps(documented)) == body


def _tally(tally):
    seconds = {
        "with_data": tally.total_seconds,
        "outage": tally.outage_seconds,
        "partial": tally.partial_seconds,
        "degraded": tally.degraded_seconds,
        "affected": tally.outage_seconds + tally.partial_seconds + tally.degraded_seconds,
        "downtime": tally.outage_seconds + 0.3 * tally.partial_seconds,
    }
    uptime = tally.uptime
    return {
        "minutes_with_data": round(seconds["with_data"] / 60, 4),
        **{f"{k}_minutes": round(v / 60, 4) for k, v in seconds.items() if k != "with_data"},
        "uptime_pct": None if uptime is None else math.floor(uptime * 10_000) / 10_000,
        "seconds_with_data": seconds["with_data"],
        **{f"{k}_seconds": v for k, v in seconds.items() if k != "with_data"},
    }


def test_a_65_second_outage_is_65_seconds_in_every_field(script, people, at_now, committed):
    start = T0 - timedelta(hours=4, minutes=40, seconds=35)  # 05:19:25
    with committed():
        resolve(outage(["use1"], start, start + timedelta(seconds=65)), start + M * 2)

    body = script.get(f"{API}/acme/uptime", {"from": "2026-01-05", "to": "2026-01-05"}).json()
    history = script.get(f"{API}/acme/incidents").json()["incidents"][0]

    (day,) = body["days"]
    assert (day["outage_seconds"], day["affected_seconds"], day["downtime_seconds"]) == (65, 65, 65)
    assert (day["outage_minutes"], day["affected_minutes"]) == (1.0833, 1.0833)
    assert (history["affected_seconds"], history["affected_minutes"]) == (65, 1.0833)
    assert history["windows"][0]["seconds"] == 65


def test_uptime_defaults_to_the_last_90_days(script, people, at_now):
    body = script.get(f"{API}/acme/uptime").json()

    assert (body["first_day"], body["last_day"]) == ("2025-10-09", "2026-01-06")
    assert len(body["days"]) == 90
    assert body["total"]["uptime_pct"] == 100.0


def test_days_before_the_tailnet_existed_have_no_data(script, people, at_now):
    body = script.get(f"{API}/acme/uptime", {"from": "2025-01-01", "to": "2025-06-30"}).json()

    # acme was created 200 days before T0, on 2025-06-19 at 10:00.
    before = [d for d in body["days"] if d["date"] < "2025-06-19"]
    assert {d["uptime_pct"] for d in before} == {None}
    assert body["months"][0]["uptime_pct"] is None


WRONG_FORMAT = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"from": "2026-02-30"}, "from", WRONG_FORMAT),
        ({"to": "06/01/2026"}, "to", WRONG_FORMAT),
        (
            {"from": "2026-01-05", "to": "2026-01-01"},
            "from",
            "2026-01-05 is after `to` (2026-01-01).",
        ),
        (
            {"from": "2024-12-01", "to": "2026-01-05"},
            "from",
            "The range is 401 days; ask for at most 400 at once.",
        ),
        (
            {"to": "2026-01-07"},
            "to",
            "2026-01-07 is in the future; the last day with data is today, 2026-01-06 (UTC).",
        ),
    ],
)
def test_bad_uptime_input_is_a_400_that_says_what_is_wrong(
    script, people, at_now, query, field, message
):
    response = script.get(f"{API}/acme/uptime", query)

    assert response.status_code == 400
    assert response.json() == {field: [message]}


def test_400_days_is_allowed(script, people, at_now):
    response = script.get(f"{API}/acme/uptime", {"from": "2024-12-03", "to": "2026-01-06"})

    assert response.status_code == 200
    assert len(response.json()["days"]) == 400


# --- /latency ------------------------------------------------------------------------------


def test_latency_gives_p50_p95_and_p99_of_every_hour_of_the_week(script, people, at_now):
    from probes.models import ProbeRegion, ProbeRollup
    from probes.rollup import histogram

    ams = ProbeRegion.objects.create(slug="ams", name="Amsterdam")
    nyc = ProbeRegion.objects.create(slug="nyc", name="New York")
    slow, failed = NOW - 5 * H, NOW - 2 * H
    _rollup(people["use1"], ams, slow, [40.0] * 45 + [120.0] * 3 + [900.0] * 2)
    _rollup(people["use1"], nyc, slow, [40.0] * 45 + [120.0] * 3 + [900.0] * 2)
    _rollup(people["euw1"], ams, slow, [5000.0] * 50)  # not acme's shard
    ProbeRollup.objects.create(
        shard=people["use1"],
        region=ams,
        granularity="hour",
        bucket_start=failed,
        count=30,
        failures=30,
        histogram=histogram([]),
    )

    response = script.get(f"{API}/acme/latency")

    assert response.status_code == 200
    assert "private" in response["Cache-Control"]
    body = response.json()
    assert set(body) == fields(serializers.TailnetLatencySerializer)
    assert (body["tailnet"], body["days"]) == ({"slug": "acme", "name": "acme.com"}, 7)
    hours = {hour["start"]: hour for hour in body["hours"]}
    assert len(body["hours"]) == len(hours) == 7 * 24
    assert list(hours) == sorted(hours)
    for hour in body["hours"]:
        assert set(hour) == fields(serializers.LatencyHourSerializer)
    assert hours["2026-01-06T05:00:00Z"] == {
        "start": "2026-01-06T05:00:00Z",
        "shard": {"name": "US East 1", "region": "us-east"},
        "p50_ms": 50.0,
        "p95_ms": 150.0,
        "p99_ms": 1000.0,
        "samples": 100,
        "failures": 0,
    }
    # Nothing answered: no percentile at all, but the failed probes are there.
    assert hours["2026-01-06T08:00:00Z"] == {
        "start": "2026-01-06T08:00:00Z",
        "shard": {"name": "US East 1", "region": "us-east"},
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
        "samples": 30,
        "failures": 30,
    }
    measured = [h for h in body["hours"] if h["p50_ms"] is not None]
    assert len(measured) == 1
    quiet = hours["2026-01-06T06:00:00Z"]
    assert (quiet["p99_ms"], quiet["samples"], quiet["shard"]["name"]) == (None, 0, "US East 1")


def test_latency_follows_acme_across_a_migration_and_is_null_before_it_existed(
    script, people, at_now
):
    from incidents.models import Placement
    from probes.models import ProbeRegion

    ams = ProbeRegion.objects.create(slug="ams", name="Amsterdam")
    moved = NOW - 5 * H
    tailnet_migrate(tailnet=people["acme"], to_shard="use2", at=moved)
    # acme joined two days ago (the first placement, the one the migration ended).
    Placement.objects.filter(tailnet=people["acme"], ends_at=moved).update(starts_at=NOW - 2 * D)
    _rollup(people["use1"], ams, moved - 2 * H, [30.0] * 10)
    _rollup(people["use2"], ams, moved + H, [150.0] * 10)

    body = script.get(f"{API}/acme/latency").json()

    hours = {hour["start"]: hour for hour in body["hours"]}
    before = hours["2026-01-06T03:00:00Z"]
    after = hours["2026-01-06T06:00:00Z"]
    assert (before["shard"]["name"], before["p50_ms"], before["p99_ms"]) == ("US East 1", 30, 30)
    assert (after["shard"]["name"], after["p50_ms"], after["p99_ms"]) == ("US East 2", 150, 150)
    assert body["hours"][0]["shard"] is None  # a week ago acme did not exist yet


# --- Tokens, throttling ----------------------------------------------------------------------


def test_a_token_reads_only_its_own_tailnet(script, people, at_now):
    # alice is a member of acme only; and her acme token reads acme only, even if she
    # later joins globex.
    from customers.models import Membership

    Membership.objects.create(user=people["alice"], tailnet=people["globex"], role="member")

    assert script.get(f"{API}/acme/status").status_code == 200
    assert script.get(f"{API}/globex/status").status_code == 404


def test_a_token_records_when_it_was_last_used(script, people, at_now):
    from plumbing.models import ApiToken

    script.get(f"{API}/acme/status")

    assert ApiToken.objects.get(name="Grafana").last_used_at == NOW


def test_the_api_is_throttled_per_token(script, people, at_now, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "tailnet_api": "2/min",
        },
    }
    assert [script.get(f"{API}/acme/status").status_code for _ in range(3)] == [200, 200, 429]
    assert "Retry-After" in script.get(f"{API}/acme/status")


def test_writes_are_not_allowed_but_only_a_member_learns_that(script, people, at_now):
    assert script.post(f"{API}/acme/status").status_code == 405
    assert script.post(f"{API}/globex/status").status_code == 404


# --- Schema and docs -------------------------------------------------------------------------


def test_the_schema_documents_the_tailnet_endpoints(client, db):
    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for name in ("status", "incidents", "uptime", "latency"):
        assert f"/api/v1/tailnets/{{slug}}/{name}" in paths
    uptime = paths["/api/v1/tailnets/{slug}/uptime"]["get"]
    assert {p["name"] for p in uptime["parameters"]} == {"slug", "from", "to"}
    assert {"200", "400", "401", "404"} <= set(uptime["responses"])
    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    # The operator API is not part of the customer schema.
    assert not any(path.startswith("/api/v1/incidents") for path in paths)


def test_the_docs_page_works_without_the_internet(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "GET /api/v1/tailnets/{slug}/uptime" in html
    # Nothing loaded from another site: no script at all but the page's own, no CDN.
    assert re.findall(r'<script[^>]*src="([^"]+)"', html) == ["/static/js/status.js"]
    assert "cdn" not in html.lower()
    assert "//" not in "".join(re.findall(r'<link[^>]*href="([^"]+)"', html))


# --- Constant queries -----------------------------------------------------------------------


def test_each_endpoint_makes_as_many_queries_for_many_incidents_as_for_one(
    script, people, at_now, committed
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from .test_tailnet_page import empty_cache

    def counts():
        found = {}
        for name in ("status", "incidents", "uptime", "latency"):
            with empty_cache(), CaptureQueriesContext(connection) as captured:
                assert script.get(f"{API}/acme/{name}").status_code == 200
            found[name] = len(captured)
        return found

    with committed():
        resolve(outage(["use1"], T0 - 3 * D, T0 - 3 * D + 10 * M), T0 - 3 * D + 10 * M)
        outage(["use1"], NOW - M, None)
    script.get(f"{API}/acme/status")  # the token's last use is recorded (once a minute)
    one = counts()
    with committed():
        for n in range(10):
            start = T0 - (20 - n) * D
            resolve(outage(["use1", "use2"], start, start + 30 * M), start + 30 * M)
            tailnet_migrate(
                tailnet=people["acme"], to_shard=["use2", "use1"][n % 2], at=start + 10 * M
            )
        outage(["use1", "use2"], NOW - M, None)

    assert counts() == one
    # The token with its tailnet (1), then: placements, open incidents and maintenance;
    # placements and history; uptime's impacts and placements; placements and rollups.
    assert one == {"status": 1 + 3, "incidents": 1 + 2, "uptime": 1 + 3, "latency": 1 + 2}


def test_the_published_schema_is_generated_without_a_warning(db):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    from customers.views import api_patterns

    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=api_patterns()).get_schema(request=None, public=True)

    assert "/api/v1/reports" in schema["paths"]
    assert not GENERATOR_STATS, f"schema warnings/errors: {GENERATOR_STATS}"
