"""The cyclic garbage collector, tuned for processes that handle records by the thousand (sinks, stream workers)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: net allocations between two young-generation collections while a batch worker runs (CPython's default: 700)
BATCH_GC_THRESHOLD = 20_000


@contextmanager
def tuned_for_batches() -> Iterator[None]:
    """The cyclic garbage collector set for a process that decodes records by the thousand, restored on exit.

    A sink or stream worker allocates several tracked objects per record and keeps batches alive, so with the
    defaults the collector runs every 700 allocations and its full collections re-scan every object of the
    process (modules, clients, schemas, hundreds of thousands). Freezing what exists at the start takes those
    out of its scans, and a higher threshold makes the young collections rarer; records hold no reference
    cycles, so nothing accumulates. Measured on the PostgreSQL sink here: about a tenth less CPU per record.
    """
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(BATCH_GC_THRESHOLD, previous[1], previous[2])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
