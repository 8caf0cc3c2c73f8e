"""PostgreSQL-only guarantees and indexes that SQLite cannot express.

- No two placements of one tailnet overlap: an exclusion constraint over
  tstzrange(starts_at, ends_at) (btree_gist lets tailnet_id take part with =).
- The affected-tailnet computation finds placements overlapping an impact window
  through a GiST index on (shard_id, tstzrange(starts_at, ends_at)); the queries
  in incidents/services.py use exactly this expression so the planner can use it.

A Meta constraint would have to depend on the database in settings, which breaks
`makemigrations --check`; so these run from here and only on PostgreSQL. On SQLite
the services enforce the same rules.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    """ALTER TABLE incidents_placement ADD CONSTRAINT placement_no_overlap
       EXCLUDE USING gist (tailnet_id WITH =, tstzrange(starts_at, ends_at) WITH &&)""",
    """CREATE INDEX placement_shard_during ON incidents_placement
       USING gist (shard_id, tstzrange(starts_at, ends_at))""",
    """ALTER TABLE incidents_shardimpact ADD CONSTRAINT shardimpact_no_overlap
       EXCLUDE USING gist (incident_id WITH =, shard_id WITH =,
                           tstzrange(starts_at, ends_at) WITH &&)""",
]
BACKWARD = [
    "ALTER TABLE incidents_shardimpact DROP CONSTRAINT IF EXISTS shardimpact_no_overlap",
    "DROP INDEX IF EXISTS placement_shard_during",
    "ALTER TABLE incidents_placement DROP CONSTRAINT IF EXISTS placement_no_overlap",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [
        migrations.RunPython(_run(FORWARD), _run(BACKWARD), elidable=False),
    ]
