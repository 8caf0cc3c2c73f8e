"""``manage.py seed_agent_tokens [DIR]``: a probe token for each demo region's agent,
written to ``DIR/<region>.token`` (default ``var/agents``), readable by its owner only.

Idempotent: a file whose token still works (not revoked, bound to its region) is
kept; otherwise a new token is made and written. Tokens are stored hashed; the file
is the only copy of the secret, as it would be on a probe host.
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from demo.fleet import PROBE_REGIONS
from plumbing.models import ApiToken
from plumbing.tokens import api_token_create, digest
from probes.models import ProbeRegion


class Command(BaseCommand):
    help = "Write a probe token for each demo region's agent (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("dir", nargs="?", default=str(settings.VAR_DIR / "agents"))

    def handle(self, *args: Any, **options: Any) -> None:
        folder = Path(options["dir"])
        folder.mkdir(parents=True, exist_ok=True)
        made = []
        for slug in PROBE_REGIONS:
            region = ProbeRegion.objects.get(slug=slug)
            path = folder / f"{slug}.token"
            if path.exists() and self._works(path.read_text().strip(), region):
                continue
            _, secret = api_token_create(
                name=f"{slug} probe agent (demo)", scope="probe", probe_region=region
            )
            path.touch(mode=0o600)
            path.chmod(0o600)
            path.write_text(secret + "\n")
            made.append(slug)
        self.stdout.write(
            f"Agent tokens written for {', '.join(made)} in {folder}."
            if made
            else f"Agent tokens present in {folder}."
        )

    @staticmethod
    def _works(secret: str, region: ProbeRegion) -> bool:
        return ApiToken.objects.filter(
            digest=digest(secret),
            scope=ApiToken.Scope.PROBE,
            probe_region=region,
            revoked_at__isnull=True,
        ).exists()
