"""A probe worker's start-up objects out of the garbage collector's sight.

A worker lives long, and what it loaded before its first round (Django, the project,
every module) lives as long. Each 1,000-shard round allocates enough to trigger full
collections, and each would re-scan all of that.
"""

import gc


# make bench-probes, probe-round ratio: 1.02-1.15 with it, 1.26-1.35 without (same runs).
def freeze_startup_objects() -> None:
    """Once per process, before its first round."""
    gc.collect()
    gc.freeze()
