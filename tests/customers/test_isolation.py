"""Isolation: nobody learns anything about a tailnet they may not see.

Every URL pattern under /t/ and /api/v1/tailnets/ is found in the URLconf (so a
route added later is covered without touching this file) and requested by every
person and token with every method, for acme (alice's), globex (bob's) and a
tailnet that does not exist:

- anonymous (and a bearer token on a page): the same login redirect for every slug;
- anonymous or a revoked token on the API: the same 401 for every slug;
- whoever is not a member of the tailnet, staff included, and any token of another
  tailnet: 404, byte for byte the same as for the tailnet that does not exist;
- and no answer, whatever it is, may be kept by a shared cache (no-store, private).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.cache import cache
from django.shortcuts import resolve_url
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from plumbing.tokens import api_token_create, api_token_revoke

PREFIXES = ("t/", "api/v1/tailnets/")
METHODS = ("get", "head", "options", "post", "put", "patch", "delete")
UNKNOWN = "no-such-tailnet"
PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
# A value for each path parameter that is not the tailnet.
FILLERS = {
    "int": "1",
    "id": "1",
    "str": "x",
    "slug": "x",
    "path": "x",
    "uuid": str(uuid.UUID(int=1)),
}


def _routes(patterns: list, prefix: str = "") -> Iterator[str]:
    for entry in patterns:
        if not isinstance(entry.pattern, RoutePattern):
            route = prefix + str(entry.pattern)
            if route.lstrip("^").startswith(PREFIXES):
                raise AssertionError(
                    f"{route}: a regex route under a customer prefix; fill it here"
                )
            if isinstance(entry, URLResolver):
                yield from ()  # regex includes elsewhere (admin) are not customer routes
            continue
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route


def customer_routes() -> list[str]:
    """Every route under the customer prefixes that names a tailnet (its first
    parameter), e.g. "t/<slug:slug>/members/<id:pk>/remove/"."""
    return sorted(
        {
            route
            for route in _routes(get_resolver().url_patterns)
            if route.startswith(PREFIXES) and PARAM.search(route)
        }
    )


ROUTES = customer_routes()


def url_for(route: str, slug: str) -> str:
    first = PARAM.search(route)
    assert first is not None
    rest = PARAM.sub(lambda m: FILLERS.get(m["converter"] or "str", "x"), route[first.end() :])
    return "/" + route[: first.start()] + slug + rest


def test_the_walk_finds_every_customer_route():
    assert {
        "t/<slug:slug>/",
        "t/<slug:slug>/uptime.csv",
        "t/<slug:slug>/tokens/",
        "api/v1/tailnets/<slug:slug>/status",
        "api/v1/tailnets/<slug:slug>/incidents",
        "api/v1/tailnets/<slug:slug>/uptime",
        "api/v1/tailnets/<slug:slug>/latency",
    } <= set(ROUTES)
    assert url_for("t/<slug:slug>/members/<id:pk>/remove/", "acme") == "/t/acme/members/1/remove/"


@dataclass(frozen=True)
class Caller:
    name: str
    client: Client
    own: str | None  # the tailnet it may see
    signed_in: bool  # a session (pages need one)
    has_token: bool
    revoked: bool = False


@pytest.fixture(autouse=True)
def _own_cache(settings):
    # Throttle counters in a fresh cache, and plenty of room: this walks many routes.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "tailnet_api": "100000/min",
        },
    }
    cache.clear()


@pytest.fixture
def callers(people) -> list[Caller]:
    def session(person: str) -> Client:
        client = Client()
        client.force_login(people[person])
        return client

    def bearer(secret: str) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    _, acme_secret = api_token_create(
        name="alice's", scope="tailnet", tailnet=people["acme"], by=people["alice"]
    )
    _, globex_secret = api_token_create(
        name="bob's", scope="tailnet", tailnet=people["globex"], by=people["bob"]
    )
    old, old_secret = api_token_create(
        name="old", scope="tailnet", tailnet=people["acme"], by=people["alice"]
    )
    api_token_revoke(token=old)
    _, staff_secret = api_token_create(name="ops", scope="staff", by=people["staff"])
    return [
        Caller("anonymous", Client(), None, signed_in=False, has_token=False),
        Caller("alice", session("alice"), "acme", signed_in=True, has_token=False),
        Caller("bob", session("bob"), "globex", signed_in=True, has_token=False),
        Caller("carol", session("carol"), None, signed_in=True, has_token=False),
        Caller("staff", session("staff"), None, signed_in=True, has_token=False),
        Caller("alice's acme token", bearer(acme_secret), "acme", False, has_token=True),
        Caller("bob's globex token", bearer(globex_secret), "globex", False, has_token=True),
        Caller("a revoked token", bearer(old_secret), None, False, has_token=True, revoked=True),
        Caller("an operator's staff token", bearer(staff_secret), None, False, has_token=True),
    ]


@pytest.mark.parametrize("route", ROUTES)
def test_nobody_learns_about_a_tailnet_they_may_not_see(route, callers):
    api = route.startswith("api/")
    login = resolve_url(settings.LOGIN_URL)
    problems: list[str] = []
    not_found: dict[tuple, set] = {}
    refused: dict[tuple, set] = {}
    for caller in callers:
        for method in METHODS:
            for slug in ("acme", "globex", UNKNOWN):
                url = url_for(route, slug)
                response = getattr(caller.client, method)(url)
                status = response.status_code
                what = f"{caller.name} {method.upper()} {url}: {status}"
                assert status < 500, what
                if not api and not caller.signed_in:
                    # The same login redirect for every slug.
                    expected = f"{login}?next={quote(url)}"
                    if (status, response.get("Location")) != (302, expected):
                        problems.append(
                            f"{what} {response.get('Location')}, not the login redirect"
                        )
                    refused.setdefault((caller.name, "redirect", method), set()).add(
                        response.content
                    )
                elif api and (caller.revoked or not (caller.signed_in or caller.has_token)):
                    if status != 401:
                        problems.append(f"{what}, not 401")
                    refused.setdefault((caller.name, "401", method), set()).add(response.content)
                elif slug != caller.own:
                    if status != 404:
                        problems.append(f"{what}, not 404")
                    key = (response["Content-Type"], method)
                    not_found.setdefault(key, set()).add(response.content)
                if "no-store" not in response.get("Cache-Control", ""):
                    problems.append(f"{what} may be stored by a shared cache")
    for key, bodies in {**not_found, **refused}.items():
        if len(bodies) != 1:
            problems.append(f"{route} {key}: the bodies differ: {sorted(bodies)[:3]}")
    assert problems == [], "\n".join(problems)


def _ours(route: str) -> bool:
    """Routes of the tailnet page and API, whose members get a real answer to a GET."""
    return route in {
        "t/<slug:slug>/",
        "t/<slug:slug>/uptime.csv",
        "t/<slug:slug>/tokens/",
        "api/v1/tailnets/<slug:slug>/status",
        "api/v1/tailnets/<slug:slug>/incidents",
        "api/v1/tailnets/<slug:slug>/uptime",
        "api/v1/tailnets/<slug:slug>/latency",
    }


@pytest.mark.parametrize("route", ROUTES)
def test_members_get_through_to_their_own_tailnet(route, callers):
    """The other side of the matrix: the door does let members in (on the pages of
    this feature, with real answers; elsewhere, at least not with a 404)."""
    by_name = {caller.name: caller for caller in callers}
    callers_for = (
        ["alice", "bob", "alice's acme token", "bob's globex token"]
        if route.startswith("api/")
        else ["alice", "bob"]
    )
    for name in callers_for:
        caller = by_name[name]
        assert caller.own is not None
        response = caller.client.get(url_for(route, caller.own))
        if _ours(route):
            assert response.status_code == 200, (name, route, response.status_code)
        elif len(PARAM.findall(route)) == 1:
            # Only the tailnet in the path: the door let them in (a page may still
            # refuse a member who is not an owner, but not with a 404).
            assert response.status_code != 404, (name, route)


def test_the_list_of_tailnets_needs_a_login_and_shows_only_ones_own(client, people):
    response = client.get("/t/")
    assert (response.status_code, response["Location"]) == (
        302,
        f"{resolve_url(settings.LOGIN_URL)}?next=/t/",
    )
    client.force_login(people["staff"])
    staff_page = client.get("/t/").content.decode()
    assert "acme.com" not in staff_page
    assert "globex.com" not in staff_page
    client.force_login(people["bob"])
    bob_page = client.get("/t/").content.decode()
    assert "globex.com" in bob_page
    assert "acme.com" not in bob_page


def test_an_unknown_customer_url_is_the_same_404_as_a_foreign_tailnet(client, people):
    """The door's 404 is Django's own: the same bytes as any URL that does not exist."""
    client.force_login(people["alice"])

    assert client.get("/t/globex/").content == client.get("/no/such/page/").content
