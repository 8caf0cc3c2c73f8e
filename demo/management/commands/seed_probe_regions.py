from django.core.management.base import BaseCommand

from demo.fleet import PROBE_REGIONS
from probes.models import ProbeRegion


class Command(BaseCommand):
    help = "Create the demo probe regions (vantage points), if missing. Idempotent."

    def handle(self, *args: object, **options: object) -> None:
        created = [
            slug
            for slug, name in PROBE_REGIONS.items()
            if ProbeRegion.objects.get_or_create(slug=slug, defaults={"name": name})[1]
        ]
        if created:
            self.stdout.write(f"Probe regions created: {', '.join(created)}")
        else:
            self.stdout.write("Probe regions already present.")
