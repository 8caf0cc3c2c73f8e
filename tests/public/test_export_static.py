"""``manage.py export_static``: the public site as plain files for a static host."""

import re
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from incidents.services import incident_create
from tests.conftest import T0

LINK = re.compile(r'(?:href|src)="(/[^"]*)"')


def _incident(title, *, at=T0, published=True):
    return incident_create(
        title=title, body="Logins are failing.", started_at=at, published=published, at=at
    )


def _served(site: Path, link: str) -> Path:
    """The file a static host serves for ``link`` from the export's root."""
    path = link.split("?", 1)[0].split("#", 1)[0]
    return site / (path.lstrip("/") + ("index.html" if path.endswith("/") else ""))


def _links(page: Path) -> list[str]:
    return LINK.findall(page.read_text())


@pytest.fixture
def site(tmp_path):
    return tmp_path / "site"


def test_export_writes_every_public_page_and_the_assets_they_link(fleet, site):
    recent = _incident("Logins failing in us-east")
    old = _incident("DERP relay restarts", at=T0 - timedelta(days=200))
    draft = _incident("Draft: not for the public", published=False)
    out = StringIO()

    call_command("export_static", str(site), stdout=out)

    for name in (
        "index.html",
        "history/index.html",
        f"incidents/{recent.pk}/index.html",
        f"incidents/{old.pk}/index.html",  # older than the snapshot's 90 days
        "api/v2/summary.json",
        "api/v2/incidents/unresolved.json",
        "feed.rss",
        "feed.atom",
        "badge.svg",
        "static/css/status.css",
    ):
        assert (site / name).is_file(), name
        assert f"wrote   {name}\n" in out.getvalue()
    assert not (site / "incidents" / str(draft.pk)).exists()
    assert "Draft: not for the public" not in (site / "index.html").read_text()
    assert "Logins failing in us-east" in (site / "index.html").read_text()

    pages = [site / "index.html", site / f"incidents/{recent.pk}/index.html"]
    assets = [link for page in pages for link in _links(page) if link.startswith("/static/")]
    assert "/static/css/status.css" in assets
    for link in assets:
        assert _served(site, link).is_file(), link
    incident_links = [link for link in _links(site / "index.html") if "/incidents/" in link]
    assert f"/incidents/{recent.pk}/" in incident_links
    for link in incident_links:
        assert _served(site, link).is_file(), link


def test_with_hashed_production_assets_the_links_resolve_inside_the_export(fleet, site, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

    call_command("export_static", str(site), stdout=StringIO())

    stylesheet = [link for link in _links(site / "index.html") if link.endswith(".css")]
    assert len(stylesheet) == 1
    assert re.fullmatch(r"/static/css/status\.[0-9a-f]{12}\.css", stylesheet[0])
    assert _served(site, stylesheet[0]).is_file()


def test_export_refuses_a_non_empty_directory_unless_forced(fleet, site):
    site.mkdir()
    (site / "keep.txt").write_text("someone's file")

    with pytest.raises(CommandError, match="not empty"):
        call_command("export_static", str(site), stdout=StringIO())
    assert not (site / "index.html").exists()

    call_command("export_static", str(site), "--force", stdout=StringIO())
    assert (site / "index.html").is_file()
    assert (site / "keep.txt").read_text() == "someone's file"
