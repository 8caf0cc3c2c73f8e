"""The regions suite's seed, run once through ``manage.py shell -c`` (the harness passes
this file's text): components, shards probed at the simulator, the probe regions, and a
probe token per region, bound to it, written to ``<token_dir>/<region>.token``.

Its input is the JSON in ``REGIONS_SEED``; its last line of output is JSON: the ids
of the shards and regions it made.
"""

import json
import os
from pathlib import Path

from incidents.models import Component, ComponentKind, Shard
from plumbing.tokens import api_token_create
from probes.models import ProbeRegion


def seed() -> None:
    spec = json.loads(os.environ["REGIONS_SEED"])
    simulator = str(spec["simulator_url"]).rstrip("/")
    token_dir = Path(spec["token_dir"])
    token_dir.mkdir(parents=True, exist_ok=True)
    shards: dict[str, int] = {}
    for position, (slug, name) in enumerate(spec["components"].items()):
        component = Component.objects.create(
            slug=slug, name=name, kind=ComponentKind.COORDINATION, position=position
        )
        for shard in spec["shards"][slug]:
            made = Shard.objects.create(
                slug=shard,
                region="regions-suite",
                public_name=f"Regions suite {shard}",
                component=component,
                probe_url=f"{simulator}/s/{shard}/key?v=88",
            )
            shards[shard] = made.pk
    regions: dict[str, int] = {}
    for slug in spec["regions"]:
        region = ProbeRegion.objects.create(slug=slug, name=f"Regions suite {slug}")
        regions[slug] = region.pk
        _, secret = api_token_create(
            name=f"regions suite agent {slug}", scope="probe", probe_region=region
        )
        path = token_dir / f"{slug}.token"
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(secret + "\n")
    print(json.dumps({"shards": shards, "regions": regions}))


seed()
