"""The event log from the placements recorded so far (``fleet/backfill.py``), so that
deriving placements from events loses no history.

It calls the app's backfill rather than a copy of it: the rule must be exactly the one
the feed uses for tailnets created another way, and it is plain SQL on the tables as
this migration leaves them. If those tables change, freeze a copy of the SQL here.
"""

from django.db import migrations


def backfill(apps, schema_editor):
    from fleet.backfill import fleet_events_backfill

    fleet_events_backfill(connection=schema_editor.connection)


def forget(apps, schema_editor):
    schema_editor.execute("DELETE FROM fleet_fleetevent WHERE source = 'backfill'")


class Migration(migrations.Migration):
    dependencies = [
        ("fleet", "0001_initial"),
        ("incidents", "0009_tailnet_deleted_at"),
    ]

    operations = [migrations.RunPython(backfill, forget, elidable=False)]
