"""The public pages as last rendered, stored on disk and in memory, so that a herd of
visitors during an outage costs a dict lookup each and no database at all.

A rebuild renders every public path through the real URLconf and middleware (a
request marked with ``CAPTURE_ENVIRON_KEY``, which the serving middleware lets pass),
keeps the 200s, and writes them as one *generation*: a directory with one file per
path, named as the path (``file_for``: ``/history/`` is ``history/index.html``), plus
``<file>.gz``, a gzipped copy of each text page, and a ``manifest.json``. Each file's
modification time is when its bytes first appeared (the manifest's ``last_modified``),
kept across rebuilds: nginx can serve a generation straight from disk
(``deploy/nginx/statuspage.conf``) and its ETag/Last-Modified survive rebuilds.
The ``current`` symlink is then swapped to it in one ``rename``, so a reader sees the
old snapshot or the new one, never half of one.
Web processes (``public.serving.SnapshotMiddleware``) keep the current
generation in memory and look at the symlink at most once a second: no database,
Redis or Celery on the request path, and a restarted process serves from disk.

Rebuilds run in the ``public.rebuild_snapshot`` task: every minute from beat (time
passes: durations, uptime bars) and after the commit of any change to published data
(one per transaction, see ``request_rebuild``). If the database is unreachable the
old snapshot stays; if one page fails, its last good copy stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.wsgi import WSGIRequest, get_script_name
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Q
from django.dispatch import receiver
from django.http import HttpResponse
from django.urls import Resolver404, resolve, set_script_prefix
from django.utils import timezone
from django.utils.http import http_date

from incidents import signals
from incidents.models import (
    Component,
    Incident,
)
from plumbing import broker
from plumbing.site import site_parts

logger = logging.getLogger(__name__)

# The public, anonymous pages: the same bytes for every visitor. A path no view
# serves (yet) is skipped, not an error.
SNAPSHOT_PATHS: tuple[str, ...] = (
    "/",
    "/history/",
    "/reliability/",
    "/api/v2/summary.json",
    "/api/v2/status.json",
    "/api/v2/components.json",
    "/api/v2/incidents.json",
    "/api/v2/incidents/unresolved.json",
    "/api/v2/scheduled-maintenances.json",
    "/api/v2/scheduled-maintenances/upcoming.json",
    "/api/v2/scheduled-maintenances/active.json",
    "/feed.rss",
    "/feed.atom",
    "/badge.svg",
)
# Incident pages in the snapshot: those of the last 90 days (the uptime bars' span)
# and every open one. export_static writes all of them.
INCIDENT_PAGE_DAYS = 90
INCIDENT_PATH = re.compile(r"^/incidents/[0-9]+/$")
# Per-component status badges, embedded in READMEs and dashboards.
BADGE_PATH = re.compile(r"^/badge/[-a-zA-Z0-9_]+\.svg$")

# A WSGI environ key (not an HTTP header, so no client can send it) that marks the
# rebuild's own requests: the serving middleware lets them through to the views.
CAPTURE_ENVIRON_KEY = "statuspage.snapshot.capture"
# Response headers of a captured page served with it besides its Content-Type; the
# serving middleware sets the caching and framing ones itself.
CAPTURED_HEADERS = (
    "Content-Language",
    "Content-Disposition",
    "Access-Control-Allow-Origin",
    "Access-Control-Expose-Headers",
    "Link",
    "X-Robots-Tag",
)
# How often a web process looks whether a new generation was swapped in.
CHECK_INTERVAL_SECONDS = 1.0
# Generations left on disk besides the current one: a reader that resolved the symlink just
# before a swap still finds its files, and a restart can fall back to one.
KEEP_GENERATIONS = 3
LOCK_WAIT_SECONDS = 60.0
CURRENT = "current"
GENERATION = re.compile(r"^g[0-9]{9}$")
MANIFEST = "manifest.json"
FORMAT = 1


class SnapshotError(Exception):
    """The snapshot was not rebuilt; the last one stays in service."""


class SnapshotBusy(SnapshotError):
    """Another rebuild holds the lock (and the caller chose not to wait)."""


# --- Paths -------------------------------------------------------------------------------


def is_public_path(path: str) -> bool:
    return (
        path in SNAPSHOT_PATHS
        or INCIDENT_PATH.match(path) is not None
        or BADGE_PATH.match(path) is not None
    )


def snapshot_paths(*, now: datetime, all_incidents: bool = False) -> list[str]:
    """The fixed public paths, one badge per component and one page per published
    incident (two queries)."""
    incidents = Incident.objects.filter(published=True)
    if not all_incidents:
        since = now - timedelta(days=INCIDENT_PAGE_DAYS)
        incidents = incidents.filter(
            Q(started_at__gte=since) | Q(resolved_at__isnull=True) | Q(resolved_at__gte=since)
        )
    ids = incidents.order_by("-started_at", "-id").values_list("pk", flat=True)
    slugs = Component.objects.order_by("slug").values_list("slug", flat=True)
    # Written out rather than reversed: reverse() would prepend the script prefix,
    # and the snapshot is keyed by path_info.
    return [
        *SNAPSHOT_PATHS,
        *(f"/incidents/{pk}/" for pk in ids),
        *(f"/badge/{slug}.svg" for slug in slugs),
    ]


def file_for(path: str) -> str:
    """Where a path's body lives in a generation or an export: ``/`` is
    ``index.html``, ``/history/`` is ``history/index.html``, ``/feed.rss`` is
    ``feed.rss`` -- the layout any static file host serves as the same URLs."""
    if not path.startswith("/"):
        raise ValueError(f"not an absolute path: {path!r}")
    relative = path[1:] + ("index.html" if path.endswith("/") else "")
    if any(part in {"", ".", ".."} for part in relative.split("/")):
        raise ValueError(f"not a plain path: {path!r}")
    return relative


# --- Capture: the live views' output -----------------------------------------------------


@dataclass(frozen=True)
class Page:
    body: bytes
    content_type: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Miss:
    reason: str
    failed: bool  # a server error: keep the last good copy rather than drop the path


def _capture_origin() -> tuple[str, str, bool]:
    """(host, port, secure) the snapshot's pages are rendered for: the site's own
    address (``plumbing.site``)."""
    site = site_parts()
    secure = site.scheme == "https"
    return site.netloc, str(site.port or (443 if secure else 80)), secure


class _Capturer:
    """Requests paths through the whole middleware stack and URLconf, in process."""

    def __init__(self) -> None:
        self.handler = BaseHandler()
        self.handler.load_middleware()
        self.host, self.port, self.secure = _capture_origin()

    def get(self, path: str) -> Page | Miss:
        try:
            resolve(path, urlconf=settings.ROOT_URLCONF)
        except Resolver404:
            return Miss("no view serves it (yet)", failed=False)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": urlsplit("//" + self.host).hostname or self.host,
            "SERVER_PORT": self.port,
            "HTTP_HOST": self.host,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if self.secure else "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            CAPTURE_ENVIRON_KEY: True,
        }
        set_script_prefix(get_script_name(environ))
        try:
            # Not response.close(): that sends request_finished, which closes the
            # database connection (and would break a surrounding transaction).
            response = self.handler.get_response(WSGIRequest(environ))
        except Exception as error:  # DEBUG_PROPAGATE_EXCEPTIONS; else views' 500s
            logger.exception("snapshot: %s raised", path)
            return Miss(f"raised {error.__class__.__name__}", failed=True)
        status = response.status_code
        if status != 200:
            return Miss(f"answered {status}", failed=status >= 500)
        if not isinstance(response, HttpResponse):
            return Miss("is a streaming response", failed=False)
        if response.cookies:
            # A per-visitor cookie (a CSRF token in a form, a session) cannot be
            # shared by everyone: the page stays live.
            logger.warning("snapshot: %s sets a cookie, so it is served live", path)
            return Miss("sets a cookie", failed=False)
        return Page(
            body=response.content,
            content_type=response.get("Content-Type", "application/octet-stream"),
            headers={name: response[name] for name in CAPTURED_HEADERS if name in response},
        )


def capture(paths: Iterable[str]) -> Iterator[tuple[str, Page | Miss]]:
    capturer = _Capturer()
    for path in paths:
        yield path, capturer.get(path)


# --- Generations on disk -----------------------------------------------------------------


def etag_for(sha256: str) -> str:
    return f'"{sha256[:32]}"'


# Every browser accepts gzip, and the pages are large and repetitive (the status page
# of 40 components is ~2 MB of HTML, ~110 KB gzipped): each text page is stored
# compressed too, once per rebuild, and served so to whoever accepts it.
GZIP_LEVEL = 9
GZIP_MIN_BYTES = 512  # below this the gzip framing eats the gain


def compressible(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith("text/") or kind.endswith(("/json", "+json", "/xml", "+xml"))


def gzipped(body: bytes) -> bytes:
    """Deterministic (no timestamp in the header): the same page, the same bytes."""
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


# Browsers and CDNs may reuse a copy for 30 s, serve it stale for a minute while they
# fetch the next one, and for a day while we answer errors.
CACHE_CONTROL = "public, max-age=30, stale-while-revalidate=60, stale-if-error=86400"


@dataclass(frozen=True, slots=True)
class Variant:
    """One encoding of a page as served: the bytes and every header, computed once."""

    body: bytes
    # Content-Type, Content-Length, [Content-Encoding,] ETag, Last-Modified,
    # Cache-Control, Vary, the captured ones; as a dict (for HttpResponse) and as WSGI pairs.
    headers: dict[str, str]
    items: tuple[tuple[str, str], ...]
    not_modified_items: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """One snapshotted path as served, as is and (text pages) gzipped."""

    path: str
    sha256: str
    etag: str
    last_modified: int  # epoch seconds
    identity: Variant
    gzip: Variant | None
    gzip_sha256: str | None

    @property
    def body(self) -> bytes:
        return self.identity.body


def _variant(
    body: bytes, meta: dict[str, Any], *, etag: str, encoding: str | None = None
) -> Variant:
    validators = {"ETag": etag, "Last-Modified": http_date(meta["last_modified"])}
    caching = {"Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    headers = {
        "Content-Type": meta["content_type"],
        "Content-Length": str(len(body)),
        **({"Content-Encoding": encoding} if encoding else {}),
        **validators,
        **caching,
        **meta.get("headers", {}),
    }
    return Variant(
        body=body,
        headers=headers,
        items=tuple(headers.items()),
        not_modified_items=tuple({**validators, **caching}.items()),
    )


def _entry(path: str, body: bytes, meta: dict[str, Any], packed: bytes | None = None) -> Entry:
    return Entry(
        path=path,
        sha256=meta["sha256"],
        etag=meta["etag"],
        last_modified=meta["last_modified"],
        identity=_variant(body, meta, etag=meta["etag"]),
        # Another encoding of the same bytes: a weak validator of the same value, as
        # Django's GZipMiddleware does, so a revalidation of either gets its 304.
        gzip=None
        if packed is None
        else _variant(packed, meta, etag=f"W/{meta['etag']}", encoding="gzip"),
        gzip_sha256=None if packed is None else meta["gzip"]["sha256"],
    )


def _read_manifest(generation: Path) -> dict[str, Any]:
    manifest = json.loads((generation / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"unknown snapshot format {manifest.get('format')!r}")
    return manifest


def _current_generation(directory: Path) -> Path | None:
    try:
        return directory / os.readlink(directory / CURRENT)
    except OSError:
        return None


def _load(generation: Path, reuse: dict[str, Entry]) -> tuple[dict[str, Entry], dict[str, Any]]:
    """Read a generation into memory (its entries, and its manifest); bodies already
    in memory are not re-read. Every body is checked against the manifest: a torn or
    truncated file fails the whole generation instead of being served."""
    manifest = _read_manifest(generation)
    entries: dict[str, Entry] = {}
    for path, meta in manifest["entries"].items():
        known = reuse.get(path)
        if known is not None and known.sha256 == meta["sha256"]:
            body = known.body
        else:
            body = _read_checked(generation, meta["file"], meta["sha256"])
        packed = None
        if "gzip" in meta:  # generations written before gzip have none
            packed_meta = meta["gzip"]
            if known is not None and known.gzip and known.gzip_sha256 == packed_meta["sha256"]:
                packed = known.gzip.body
            else:
                packed = _read_checked(generation, packed_meta["file"], packed_meta["sha256"])
        entries[path] = _entry(path, body, meta, packed)
    return entries, manifest


def _read_checked(generation: Path, file: str, sha256: str) -> bytes:
    data = (generation / file).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{generation.name}/{file} does not match its manifest")
    return data


def _sequence(generations: list[Path]) -> int:
    return int(generations[0].name[1:]) if generations else 0


def _generations(directory: Path) -> list[Path]:
    """Finished generations, newest first."""
    return sorted(
        (
            child
            for child in directory.glob("g*")
            if GENERATION.match(child.name) and child.is_dir()
        ),
        key=lambda child: child.name,
        reverse=True,
    )


# --- The in-memory copy a web process serves ---------------------------------------------


class SnapshotStore:
    """The current generation of one snapshot directory, in memory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entries: dict[str, Entry] = {}
        self.generation: str | None = None
        self._next_check = 0.0
        self._failed: str | None = None
        self._lock = threading.Lock()
        # The published version the generation in memory was built from, and when.
        self.version = -1
        self.built_at: float | None = None
        self._next_follow = 0.0
        self._following = threading.Lock()  # held while a follow thread runs
        self._follow_failing = False
        self._keeper: threading.Thread | None = None

    def get(self, path: str) -> Entry | None:
        now = time.monotonic()
        if now >= self._next_check:
            self.refresh()
        if now >= self._next_follow:
            self.follow()
        return self.entries.get(path)

    def follow(self) -> None:
        """At most every ``SNAPSHOT_FOLLOW_SECONDS``, in a thread of its own (never on a
        visitor's request): if published data changed since the snapshot in memory
        was built, rebuild it. Visitors meanwhile get the copy in memory, which says
        "As of …"; with the database down that is all they get, and all is well."""
        seconds = settings.SNAPSHOT_FOLLOW_SECONDS
        if not seconds or not self._following.acquire(blocking=False):
            return
        self._next_follow = time.monotonic() + seconds
        threading.Thread(target=self._follow, name="snapshot-follow", daemon=True).start()

    def keep_current(self) -> None:
        """Follow from a thread of this process's own, every ``SNAPSHOT_FOLLOW_SECONDS``,
        whether or not visitors reach it (nginx serves them from disk): each web host
        keeps its snapshot current by itself, no cron, no beat needed. A host that starts
        without a snapshot builds one at once and serves live until then. Once per
        process (the web's WSGI module calls it)."""
        if not settings.SNAPSHOT_FOLLOW_SECONDS or self._keeper is not None:
            return

        def keep() -> None:
            while seconds := settings.SNAPSHOT_FOLLOW_SECONDS:  # 0: stop (tests)
                self.refresh()  # what the disk holds now (another process may have built)
                self.follow()
                time.sleep(seconds)
            self._keeper = None

        self._keeper = threading.Thread(target=keep, name="snapshot-keeper", daemon=True)
        self._keeper.start()

    def _follow(self) -> None:
        from django.db import connections

        try:
            snapshot_follow(known=self.version, built_at=self.built_at)
            if self._follow_failing:
                logger.info("snapshot: following published changes again")
            self._follow_failing = False
        except (DatabaseError, SnapshotError) as error:
            if not self._follow_failing:  # once per outage, not once a second
                logger.warning("snapshot: cannot follow published changes (%s)", error)
            self._follow_failing = True
        finally:
            connections.close_all()  # this thread's own
            self._next_check = 0.0  # a rebuild may have swapped a generation in
            self._following.release()

    def expire(self) -> None:
        """Look at the disk on the next request (a rebuild in this process)."""
        self._next_check = 0.0

    def refresh(self) -> None:
        # One thread looks; the others keep serving what is in memory meanwhile.
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._next_check = time.monotonic() + CHECK_INTERVAL_SECONDS
            current = _current_generation(self.directory)
            if current is None or current.name in {self.generation, self._failed}:
                return
            candidates = [current]
            if not self.entries:  # nothing to serve yet: an older generation will do
                candidates += [g for g in _generations(self.directory) if g.name != current.name]
            for generation in candidates:
                try:
                    self.entries, manifest = _load(generation, reuse=self.entries)
                except (OSError, ValueError, KeyError, TypeError) as error:
                    logger.warning("snapshot: cannot load %s (%s)", generation, error)
                    continue
                self.version = manifest.get("version", -1)
                self.built_at = datetime.fromisoformat(manifest["built_at"]).timestamp()
                self.generation = generation.name
                self._failed = None if generation is current else current.name
                return
            self._failed = current.name
        finally:
            self._lock.release()


_store: SnapshotStore | None = None


def store() -> SnapshotStore:
    """This process's copy of the snapshot in ``settings.SNAPSHOT_DIR``."""
    global _store
    current = _store
    if current is None:
        current = _store = SnapshotStore(Path(settings.SNAPSHOT_DIR))
    return current


def lookup(path: str) -> Entry | None:
    """The entry to serve for ``path``, or None: the hot path, no I/O but one
    ``readlink`` a second."""
    return (_store or store()).get(path)


def forget() -> None:
    """Drop the in-memory copy, as a fresh process would start."""
    global _store
    _store = None


@receiver(setting_changed)
def _snapshot_dir_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "SNAPSHOT_DIR":  # tests and override_settings; never in production
        forget()


# --- Rebuild -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RebuildResult:
    generation: str | None  # None: skipped, a rebuild started after it was requested
    changed: list[str] = field(default_factory=list)  # new or different bytes
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    carried_over: list[str] = field(default_factory=list)  # failed now: the last good copy stays
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why not snapshotted
    failed: dict[str, str] = field(default_factory=dict)  # path -> how its page failed


@contextlib.contextmanager
def _build_lock(directory: Path, *, wait: bool = True) -> Iterator[None]:
    """One rebuild at a time per directory, across processes: two interleaving
    builds could otherwise swap an older snapshot in after a newer one. Without
    ``wait``, SnapshotBusy if another holds it."""
    with open(directory / ".lock", "a+b") as handle:
        deadline = time.monotonic() + (LOCK_WAIT_SECONDS if wait else 0.0)
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise SnapshotBusy("another rebuild is running") from None
                if time.monotonic() > deadline:
                    raise SnapshotError("another rebuild has held the lock too long") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(path: Path, data: bytes, *, mtime: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        # A web server in front (nginx) derives its validators from the file: the
        # same bytes keep the same mtime, so its ETag and Last-Modified survive rebuilds.
        os.utime(path, (mtime, mtime))


def snapshot_rebuild(
    *,
    requested_at: float | None = None,
    if_behind: bool = False,
    max_age: float | None = None,
    wait: bool = True,
) -> RebuildResult:
    """Render every public page and swap the result in as the current snapshot.

    ``requested_at`` (epoch seconds, set when a change queued this rebuild): skip if
    a rebuild already started after it, so a burst of changes costs one or two
    rebuilds, not one each. ``if_behind``: skip unless published data changed since
    the current snapshot was built (``PublishedVersion``), or (with ``max_age``) it was
    built that many seconds ago or more. ``wait=False``: SnapshotBusy
    rather than wait for another rebuild. Raises SnapshotError if the database is
    unreachable (the last snapshot stays in service).
    """
    directory = Path(settings.SNAPSHOT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    with _build_lock(directory, wait=wait):
        current = _current_generation(directory)
        try:
            previous = _read_manifest(current) if current else None
        except (OSError, ValueError) as error:
            logger.warning("snapshot: ignoring unreadable %s (%s)", current, error)
            previous = None
        if requested_at is not None and previous and previous["started_at"] > requested_at:
            return RebuildResult(generation=None)

        started_at = time.time()
        try:
            connection.ensure_connection()
            # Read first: a change committed during the build bumps past it.
            version = published_version()
            if if_behind and previous and previous.get("version", -1) >= version:
                built = datetime.fromisoformat(previous["built_at"]).timestamp()
                if max_age is None or time.time() - built < max_age:
                    return RebuildResult(generation=None)
            paths = snapshot_paths(now=timezone.now())
        except DatabaseError as error:
            raise SnapshotError(f"the database is unreachable: {error}") from error

        old = previous["entries"] if previous else {}
        newest = _generations(directory)
        sequence = max(previous["sequence"] if previous else 0, _sequence(newest)) + 1
        name = f"g{sequence:09d}"
        staging = directory / f".tmp-{uuid.uuid4().hex}"
        entries: dict[str, dict[str, Any]] = {}
        result = RebuildResult(generation=name)
        try:
            for path, outcome in capture(paths):
                before = old.get(path)
                if isinstance(outcome, Miss):
                    if outcome.failed:
                        result.failed[path] = outcome.reason
                    if outcome.failed and before and _keep(before, current, staging):
                        entries[path] = before
                        result.carried_over.append(path)
                    else:
                        result.skipped[path] = outcome.reason
                    continue
                sha256 = hashlib.sha256(outcome.body).hexdigest()
                if before is not None and before["sha256"] == sha256:
                    last_modified = before["last_modified"]  # when these bytes first appeared
                    result.unchanged.append(path)
                else:
                    last_modified = int(time.time())
                    result.changed.append(path)
                entries[path] = {
                    "file": file_for(path),
                    "sha256": sha256,
                    "etag": etag_for(sha256),
                    "last_modified": last_modified,
                    "content_type": outcome.content_type,
                    "headers": outcome.headers,
                }
                _write(staging / file_for(path), outcome.body, mtime=last_modified)
                same = before if before is not None and before["sha256"] == sha256 else None
                packed = _gzip_entry(
                    outcome, file_for(path), staging, current, same, mtime=last_modified
                )
                if packed is not None:
                    entries[path]["gzip"] = packed
            if not entries and old:
                raise SnapshotError("no page could be rendered or carried over")
            result.removed.extend(sorted(set(old) - set(entries)))
            if result.carried_over and previous:
                # Some pages are old copies: this build must not make a rebuild
                # queued before it look redundant.
                started_at = previous["started_at"]
            manifest = {
                "format": FORMAT,
                "sequence": sequence,
                "started_at": started_at,
                "built_at": timezone.now().isoformat(),
                "version": version,
                "entries": entries,
            }
            _write(staging / MANIFEST, json.dumps(manifest, indent=1).encode())
            staging.rename(directory / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _swap(directory, name)
        _prune(directory, keep=name)
    if _store is not None and _store.directory == directory:
        _store.expire()
    logger.info(
        "snapshot %s: %d changed, %d unchanged, %d removed, %d carried over after errors",
        name,
        len(result.changed),
        len(result.unchanged),
        len(result.removed),
        len(result.carried_over),
    )
    return result


def _gzip_entry(
    page: Page,
    file: str,
    staging: Path,
    current: Path | None,
    same: dict[str, Any] | None,
    *,
    mtime: int,
) -> dict[str, str] | None:
    """Write the page's gzipped copy next to it, if that is worth it: the current
    generation's copy when the page did not change (most pages, most minutes)."""
    if len(page.body) < GZIP_MIN_BYTES or not compressible(page.content_type):
        return None
    if current is not None and same is not None and "gzip" in same:
        try:
            packed = (current / same["gzip"]["file"]).read_bytes()
        except OSError:
            packed = b""
        if hashlib.sha256(packed).hexdigest() == same["gzip"]["sha256"]:
            _write(staging / f"{file}.gz", packed, mtime=mtime)
            return dict(same["gzip"])
    packed = gzipped(page.body)
    if len(packed) >= len(page.body):
        return None
    _write(staging / f"{file}.gz", packed, mtime=mtime)
    return {"file": f"{file}.gz", "sha256": hashlib.sha256(packed).hexdigest()}


def _keep(before: dict[str, Any], current: Path | None, staging: Path) -> bool:
    """Carry a page's last good copy (and its gzipped one) into the new generation."""
    if current is None:
        return False
    files = [before["file"]] + ([before["gzip"]["file"]] if "gzip" in before else [])
    try:
        for file in files:
            _write(staging / file, (current / file).read_bytes(), mtime=before["last_modified"])
    except OSError as error:
        logger.warning("snapshot: cannot keep the last copy of %s (%s)", before["file"], error)
        return False
    return True


def _swap(directory: Path, name: str) -> None:
    link = directory / f".{CURRENT}-{uuid.uuid4().hex}"
    os.symlink(name, link)
    os.replace(link, directory / CURRENT)  # atomic: readers see the old or the new


def _prune(directory: Path, *, keep: str) -> None:
    for stale in directory.glob(".tmp-*"):  # a crashed build's (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    for old in _generations(directory)[KEEP_GENERATIONS + 1 :]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


# --- Following published changes on every web host ------------------------------------


def published_version() -> int:
    from .models import PublishedVersion

    return PublishedVersion.objects.filter(pk=1).values_list("version", flat=True).first() or 0


def published_version_bump() -> None:
    """Count a committed change to published data (after its commit)."""
    from .models import PublishedVersion

    now = timezone.now()
    if not PublishedVersion.objects.filter(pk=1).update(version=F("version") + 1, changed_at=now):
        PublishedVersion.objects.bulk_create(
            [PublishedVersion(pk=1, version=1, changed_at=now)], ignore_conflicts=True
        )


def snapshot_follow(*, known: int = -1, built_at: float | None = None) -> RebuildResult | None:
    """Rebuild this host's snapshot now if published data changed since it was built
    (``known`` is the version the caller already serves), or it is older than
    ``SNAPSHOT_MAX_AGE_SECONDS`` (``built_at``, epoch seconds: durations and uptime bars
    grow with time). So every web host keeps its own snapshot current, beat or not.
    None if nothing was behind, or another rebuild is running (the next look tries
    again). Runs under the web's database deadline (``plumbing.deadline``): a hung
    database ends it."""
    from django.db import connections

    from plumbing.deadline import watchdog

    max_age = settings.SNAPSHOT_MAX_AGE_SECONDS
    old = built_at is None or time.time() - built_at >= max_age
    token = watchdog.arm(connections["default"], settings.WEB_DATABASE_TIMEOUT_SECONDS or 30)
    try:
        if not old and published_version() <= known:
            return None
        result = snapshot_rebuild(if_behind=True, max_age=max_age, wait=False)
        return result if result.generation else None
    except SnapshotBusy:
        return None
    finally:
        watchdog.disarm(token)


# --- After-commit rebuilds ---------------------------------------------------------------

# The rebuild queued by the current transaction of a connection (see request_rebuild).
_pending: weakref.WeakKeyDictionary[BaseDatabaseWrapper, Callable[[], None]] = (
    weakref.WeakKeyDictionary()
)


def queue_rebuild() -> None:
    """Queue a rebuild now. A broker that is down must not fail the caller (the
    change it follows is committed): the periodic rebuild catches up within a minute."""
    from .tasks import rebuild_snapshot

    broker.publish(rebuild_snapshot, (time.time(),), what="a snapshot rebuild")


def request_rebuild(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Queue one rebuild after the current transaction commits, however many changes
    it makes. A rolled-back savepoint drops its callback, so the next change queues
    one again."""
    conn = transaction.get_connection(using)
    pending = _pending.get(conn)
    if pending is not None and any(func is pending for _, func, *_ in conn.run_on_commit):
        return

    def publish() -> None:
        if _pending.get(conn) is publish:
            del _pending[conn]
        try:
            published_version_bump()
        except DatabaseError as error:  # committed already; the minute's rebuild shows it
            logger.warning("could not bump the published version (%s)", error)
        queue_rebuild()

    _pending[conn] = publish
    transaction.on_commit(publish, using=using)


def _published_data_changed(using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    request_rebuild(using=using)


def connect_signals() -> None:
    """Rebuild after the commit of any change the domain announces as published
    (``incidents.signals``); the periodic rebuild covers the rest within a minute."""
    signals.published_data_changed.connect(_published_data_changed, dispatch_uid="snapshot")


# --- Static export -----------------------------------------------------------------------


def snapshot_export(*, target: Path) -> tuple[list[str], dict[str, str]]:
    """Write the whole public site under ``target`` for a static host or CDN: every
    public page (all published incidents) as files, plus the static assets under
    ``static/`` as the pages link them. Returns (files written, paths skipped)."""
    from django.core.management import call_command
    from django.test.utils import override_settings

    target.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    skipped: dict[str, str] = {}
    # Collect into the export and render with that STATIC_ROOT: with the manifest
    # storage (production) the pages then link the hashed names just written.
    with override_settings(STATIC_ROOT=target / "static"):
        call_command("collectstatic", interactive=False, verbosity=0)
        try:
            paths = snapshot_paths(now=timezone.now(), all_incidents=True)
        except DatabaseError as error:
            raise SnapshotError(f"the database is unreachable: {error}") from error
        failed = []
        for path, outcome in capture(paths):
            if isinstance(outcome, Miss):
                if outcome.failed:
                    failed.append(path)
                skipped[path] = outcome.reason
                continue
            _write(target / file_for(path), outcome.body)
            written.append(file_for(path))
    if failed:
        raise SnapshotError(f"these pages failed: {', '.join(failed)}")
    static_root = target / "static"
    written += sorted(
        str(item.relative_to(target)) for item in static_root.rglob("*") if item.is_file()
    )
    return written, skipped
