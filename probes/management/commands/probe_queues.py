from django.core.management.base import BaseCommand

from probes.models import worker_regions


class Command(BaseCommand):
    help = (
        "Print the Celery queues a worker listens on: celery, and those of the regions "
        "probed from a worker (PROBE_WORKER_REGIONS)."
    )

    def handle(self, *args: object, **options: object) -> None:
        regions = worker_regions().values_list("slug", flat=True)
        self.stdout.write(",".join(["celery", *(f"probes.{slug}" for slug in regions)]))
