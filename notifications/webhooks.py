"""Webhook deliveries: signed, bounded, and never to an address inside our network.

- Signature: ``X-Statuspage-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
  "<t>.<raw body>")>`` (the README has the receiver's recipe).
- Bounded: a 5 s timeout for the whole exchange, no redirects followed (a 3xx is a
  failure), at most 1 KB of the answer read, no proxy from the environment.
- Guarded against SSRF: the address actually connected to is checked, not the name
  in the URL (aiohttp connects to what the resolver returns, and our resolver only
  returns public addresses), so a name that resolves to a public address when
  checked and a private one when used (DNS rebinding) gets nowhere. Only globally
  routable unicast addresses are allowed (no private, shared, loopback, link-local,
  multicast, reserved or unspecified one);
  ``NOTIFY_WEBHOOK_ALLOW_LOOPBACK`` allows loopback (the demo's receivers).
"""

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from django.conf import settings

SIGNATURE_HEADER = "X-Statuspage-Signature"
DELIVERY_HEADER = "X-Statuspage-Delivery"
READ_AT_MOST = 1024
USER_AGENT = "statuspage-webhooks/1"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def signature(secret: str, body: bytes, t: int) -> str:
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def address_allowed(address: Address) -> bool:
    """May we deliver to this address?"""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return bool(settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK)
    # is_global leaves out private, shared (CGNAT 100.64/10), link-local, reserved,
    # documentation and unspecified ranges; some multicast ranges count as global.
    return address.is_global and not address.is_multicast


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook, or None. Names are checked when delivering,
    on the address they resolve to then."""
    if len(url) > 500:
        return "At most 500 characters."
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in ("http", "https") or not host:
        return "An http:// or https:// URL is required."
    if parts.username or parts.password:
        return "Put credentials in the secret, not in the URL."
    literal = _literal(host)
    if literal is not None and not address_allowed(literal):
        return "Webhooks cannot be delivered to private, loopback or link-local addresses."
    local_name = literal is None and (host == "localhost" or host.endswith(".localhost"))
    if local_name and not settings.NOTIFY_WEBHOOK_ALLOW_LOOPBACK:
        return "Webhooks cannot be delivered to private, loopback or link-local addresses."
    return None


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class Blocked(OSError):
    """The URL's host has no address we deliver to."""


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then keeps only the addresses we may connect to."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if address_allowed(ipaddress.ip_address(r["host"]))]
        if not allowed:
            raise Blocked(f"{host} resolves only to addresses webhooks are not delivered to")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class Outgoing:
    url: str
    body: bytes
    secret: str
    delivery_id: str


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str = ""


async def _post(session: aiohttp.ClientSession, item: Outgoing) -> Outcome:
    host = urlsplit(item.url).hostname or ""
    literal = _literal(host)
    if literal is not None and not address_allowed(literal):
        # aiohttp connects to an address literal without asking the resolver.
        return Outcome(False, error="Refused: a private, loopback or link-local address.")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: item.delivery_id,
        SIGNATURE_HEADER: signature(item.secret, item.body, int(time.time())),
    }
    try:
        async with session.post(
            item.url, data=item.body, headers=headers, allow_redirects=False
        ) as response:
            await response.content.read(READ_AT_MOST)
            if 200 <= response.status < 300:
                return Outcome(True, response.status)
            return Outcome(False, response.status, f"Answered {response.status}.")
    except Blocked as error:
        return Outcome(False, error=f"Refused: {error}.")
    except TimeoutError:
        return Outcome(False, error="No answer within the timeout.")
    except aiohttp.ClientConnectorError as error:
        cause = error.os_error if isinstance(error.os_error, Blocked) else error
        prefix = "Refused" if isinstance(cause, Blocked) else "Could not connect"
        return Outcome(False, error=f"{prefix}: {cause}"[:500])
    except (aiohttp.ClientError, OSError, ValueError) as error:
        return Outcome(False, error=f"{type(error).__name__}: {error}"[:500])


class Poster:
    """One event loop and one HTTP session for many batches, so connections to a
    receiver are kept alive from one batch to the next (``with Poster() as poster:
    poster.post(items)``)."""

    def __init__(self, concurrency: int | None = None) -> None:
        self.concurrency = concurrency or settings.NOTIFY_WEBHOOK_CONCURRENCY

    def __enter__(self) -> "Poster":
        self.loop = asyncio.new_event_loop()
        self.session = self.loop.run_until_complete(self._open())
        return self

    async def _open(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(), limit=self.concurrency),
            timeout=aiohttp.ClientTimeout(total=settings.NOTIFY_WEBHOOK_TIMEOUT_SECONDS),
            trust_env=False,
        )

    def post(self, items: Sequence[Outgoing]) -> list[Outcome]:
        """POST every item (at most ``concurrency`` at a time); one outcome per item."""
        if not items:
            return []
        return self.loop.run_until_complete(self._post_all(items))

    async def _post_all(self, items: Sequence[Outgoing]) -> list[Outcome]:
        limit = asyncio.Semaphore(self.concurrency)

        async def one(item: Outgoing) -> Outcome:
            async with limit:
                return await _post(self.session, item)

        return list(await asyncio.gather(*(one(item) for item in items)))

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.close()


def post_all(items: Sequence[Outgoing], *, concurrency: int | None = None) -> list[Outcome]:
    """POST every item (at most ``concurrency`` at a time); one outcome per item."""
    if not items:
        return []
    with Poster(concurrency) as poster:
        return poster.post(items)


def slack_body(text: str, link: str, link_text: str) -> dict[str, Any]:
    """Slack's incoming-webhook message: ``text`` (its fallback and notification)
    and one section block in its mrkdwn, with the link."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {
        "text": text,
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{escaped}\n<{link}|{link_text}>"},
            }
        ],
    }
