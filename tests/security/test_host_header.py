"""Every absolute link is on the site's configured address (STATUSPAGE_PUBLIC_URL):
never on the Host or X-Forwarded-Proto a request sent. Whoever sends the request
chooses those, and a link built on them is mailed to someone else (a password reset
to the attacker's host) or cached for everyone (``Cache-Control: public``).

alice owns acme; mallory sends the requests with a forged Host.
"""

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client

from incidents.services import WindowSpec, incident_create
from plumbing.tokens import api_token_create
from tests.conftest import T0

ROOT = Path(__file__).resolve().parents[2]
SITE = "https://status.example.com"
# Allowed (so Django does not refuse it outright) and still not the site's address.
FORGED = "127.0.0.1:31337"
MALLORY = {"HTTP_HOST": FORGED, "HTTP_X_FORWARDED_PROTO": "http"}


@pytest.fixture(autouse=True)
def _site(settings, time_machine):
    settings.STATUSPAGE_PUBLIC_URL = SITE
    time_machine.move_to(T0 + timedelta(hours=1), tick=False)


@pytest.fixture
def outage(fleet):
    return incident_create(
        title="Logins failing",
        body="Investigating.",
        started_at=T0,
        shard_impacts=[WindowSpec("use1", "outage", T0)],
        published=True,
        at=T0,
    )


def test_a_password_reset_asked_for_with_a_forged_host_links_to_the_site(client, people):
    response = client.post("/accounts/password_reset/", {"email": "alice@acme.com"}, **MALLORY)
    assert response.status_code == 302

    (message,) = mail.outbox
    assert "31337" not in message.body
    assert "127.0.0.1" not in message.body
    assert re.search(rf"{SITE}/accounts/reset/\S+/", message.body)
    assert "your account on status.example.com" in message.body


def test_an_invitation_sent_from_a_forged_host_links_to_the_site(people, settings):
    # Without STATUSPAGE_PUBLIC_URL the site is the first allowed host, still never
    # the one the request named.
    settings.STATUSPAGE_PUBLIC_URL = ""
    settings.ALLOWED_HOSTS = ["status.example.com", "127.0.0.1", "testserver"]
    alice = Client()
    alice.force_login(people["alice"])
    alice.post(
        "/t/acme/members/invite/", {"email": "carol@example.net", "role": "member"}, **MALLORY
    )
    (message,) = mail.outbox
    assert f"{SITE}/invite/" in message.body
    assert "31337" not in message.body


@pytest.mark.parametrize("path", ["/api/v2/summary.json", "/api/v2/incidents.json"])
def test_the_public_json_never_reflects_a_forged_host(client, outage, path):
    # A query string: the live view answers (no snapshot), as a cache would store it.
    response = client.get(path, {"nocache": "1"}, **MALLORY)
    assert response.status_code == 200
    assert "public" in response["Cache-Control"]
    data = response.json()
    assert data["page"]["url"] == SITE
    assert data["incidents"][0]["shortlink"] == f"{SITE}/incidents/{outage.pk}/"
    assert "31337" not in response.content.decode()


def test_the_feeds_never_reflect_a_forged_host(client, outage):
    for path in ("/feed.rss?x=1", "/feed.atom?x=1"):
        response = client.get(path, **MALLORY)
        assert response.status_code == 200
        body = response.content.decode()
        assert "31337" not in body, path
        links = re.findall(r"https?://[^\s\"<]+", body)
        ours = [link for link in links if not link.startswith("http://www.w3.org/")]
        assert ours, path
        assert all(link.startswith(SITE) for link in ours), (path, ours)
    channel = ET.fromstring(client.get("/feed.rss?x=1", **MALLORY).content).find("channel")  # noqa: S314
    assert channel.find("link").text == f"{SITE}/"


def test_the_tailnet_api_links_to_the_site_whatever_the_host(people, outage):
    _, secret = api_token_create(name="Grafana", scope="tailnet", tailnet=people["acme"])
    dashboard = Client(headers={"Authorization": f"Bearer {secret}"})
    forged = dashboard.get("/api/v1/tailnets/acme/status", **MALLORY).json()
    assert forged["incidents"][0]["url"] == f"{SITE}/incidents/{outage.pk}/"


def test_the_tokens_page_shows_the_api_on_the_site(people):
    alice = Client()
    alice.force_login(people["alice"])
    page = alice.get("/t/acme/tokens/", **MALLORY).content.decode()
    assert f"{SITE}/api/v1/tailnets/acme" in page
    assert "31337" not in page


def test_x_forwarded_proto_is_believed_only_behind_a_trusted_proxy():
    def proxy_ssl_header(hops: str) -> str:
        env = {**os.environ, "TRUSTED_PROXY_HOPS": hops}
        return subprocess.run(
            [
                sys.executable,
                "-c",
                "import statuspage.settings as s; print(s.SECURE_PROXY_SSL_HEADER)",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()

    assert proxy_ssl_header("0") == "None"
    assert proxy_ssl_header("1") == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_without_a_trusted_proxy_a_forged_https_is_still_redirected(client, fleet, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/history/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
