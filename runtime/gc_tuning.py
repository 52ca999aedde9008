"""Garbage-collector settings for a long-running server process.

CPython's cyclic collector walks every tracked object of a generation when it
collects it. Two things make that costly in this service under load:

- the full (oldest-generation) collections re-walk everything start-up
  created (modules, the GraphQL schema, strawberry's and graphql-core's
  type maps) although none of it ever becomes garbage; ``gc.freeze()`` after
  start-up moves those objects out of the collector's sight;
- the default young-generation threshold (700 allocations) triggers a
  collection every few requests, and promotes the objects of requests still
  in flight to older generations, where they are collected later, at a higher
  price. A larger threshold collects the same garbage in fewer passes.

Reference counting still frees almost everything at once; only the timing of
the cycle collector changes, and garbage cycles are still collected.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Allocations (minus deallocations) between young-generation collections (default 700)."""


def tune_after_startup() -> tuple[int, int, int]:
    """Collect once, freeze the survivors of start-up, collect young objects less often.

    Returns the previous thresholds, for ``undo``.
    """
    gc.collect()
    gc.freeze()
    previous = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, previous[1], previous[2])
    return previous


def undo(previous: tuple[int, int, int]) -> None:
    """Restore ``previous`` thresholds; the frozen objects become collectable again."""
    gc.set_threshold(*previous)
    gc.unfreeze()
