from django.core.management.base import BaseCommand

from probes.models import ProbeRegion


class Command(BaseCommand):
    help = "Print the Celery queues a worker serving every active probe region listens on."

    def handle(self, *args: object, **options: object) -> None:
        regions = ProbeRegion.objects.filter(active=True).values_list("slug", flat=True)
        self.stdout.write(",".join(["celery", *(f"probes.{slug}" for slug in regions)]))
