from django.db import models


class PublishedVersion(models.Model):
    """How often published data has changed: one row, bumped after the commit of every
    change to it (``public.snapshot.request_rebuild``). Every web host compares it with
    the version its snapshot was built from, so a change reaches ``/`` on every host
    even when no Celery worker runs (``public.snapshot.SnapshotStore``)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="one_version")]

    def __str__(self) -> str:
        return f"published version {self.version}"
