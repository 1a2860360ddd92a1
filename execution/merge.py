"""Many Kafka partitions in one event-time order that does not depend on how Kafka interleaved them.

The paper trader joins decisions with the tape of every symbol, and an account's limits span symbols, so the
order in which it applies records decides its orders and fills. Kafka only orders records within a partition;
what one poll returns from several partitions is a matter of timing. The merge makes the order a function of
the partitions' contents alone:

* each source (topic, partition) is a FIFO queue; its records get a **monotone** time (``max`` of their own and
  the one before), so a source never goes back in time;
* a record is released when its time is below the **watermark**: the lowest time any source may still bring.
  A source that is behind (records unread), or at its end but heard from within ``quiet_after_s`` (a live
  partition between two records), holds the watermark at its time. A source at its end and quiet for longer
  holds it no further back than ``max_skew_ms`` behind the newest time seen (a whole topic silent: no
  forecaster, a worker starting, a symbol halted); one that has **never** spoken holds it no further back
  than its topic's newest time either (a partition no symbol hashes to never speaks). A source that has spoken
  keeps its own time until the skew bound passes it: a worker catching up a backlog publishes one partition's
  bar closes well ahead of another's, and the one behind is quiet, not done;
* released in (time, source rank, partition, offset) order: market data before decisions at the same time.

So two runs that read the same partitions release the same sequence, provided no source went quiet at its end
and then delivered records more than ``max_skew_ms`` behind the others (the executor refuses such decisions as
late). ``flush`` releases everything (a finished session: nothing else is coming). The caller passes the wall
clock (``now``, monotonic seconds): the merge itself reads no clock.

>>> merge = EventMerge(max_skew_ms=1000, ranks={"q": 0, "s": 1})
>>> merge.assign([("q", 0), ("s", 0)])
>>> for topic, offset, ts in (("s", 0, 100), ("q", 0, 90), ("q", 1, 120)):
...     merge.add(topic, 0, offset, ts, f"{topic}@{ts}")
>>> [item for *_, item in merge.release()]       # s may still bring 100: nothing from 100 on yet
['q@90']
>>> merge.add("s", 0, 1, 130, "s@130")
>>> [item for *_, item in merge.release()]       # q may still bring 120
['s@100']
>>> merge.positions()                            # [resume offset, last released time]
{'q:0': [1, 90], 's:0': [1, 100]}
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
NEVER = -(2**62)


@dataclass(slots=True)
class Source(Generic[T]):
    #: monotone time of the newest record read, and of the newest released
    clock: int = NEVER
    released: int = NEVER
    #: wall clock (monotonic seconds) of the last record read
    heard: float = 0.0
    #: offset to resume from: the first record not yet released
    next_offset: int = 0
    at_end: bool = False
    queue: deque[tuple[int, int, T]] = field(default_factory=deque)


class EventMerge(Generic[T]):
    def __init__(self, max_skew_ms: int, ranks: dict[str, int], quiet_after_s: float = 10.0) -> None:
        self.max_skew_ms = max_skew_ms
        self.quiet_after_s = quiet_after_s
        self.ranks = ranks
        self.sources: dict[tuple[str, int], Source[T]] = {}

    def assign(self, sources: Iterable[tuple[str, int]], resume: dict[str, list[int]] | None = None) -> None:
        """Start reading ``sources``; ``resume`` is what :meth:`positions` said at the last checkpoint."""
        for topic, partition in sources:
            source: Source[T] = Source()
            saved = (resume or {}).get(f"{topic}:{partition}")
            if saved is not None:
                source.next_offset, source.clock = saved
                source.released = source.clock
            self.sources[(topic, partition)] = source

    def add(self, topic: str, partition: int, offset: int, ts: int, item: T, now: float = 0.0) -> None:
        """Queue a record read from a source at ``now``, at its monotone time."""
        source = self.sources[(topic, partition)]
        source.clock = max(source.clock, ts)
        source.at_end, source.heard = False, now
        source.queue.append((source.clock, offset, item))

    def reached_end(self, topic: str, partition: int) -> None:
        source = self.sources.get((topic, partition))
        if source is not None:
            source.at_end = True

    def watermark(self, now: float = 0.0) -> int:
        if not self.sources:
            return NEVER
        newest = max(s.clock for s in self.sources.values())
        topic_newest: dict[str, int] = {}
        for (topic, _), source in self.sources.items():
            topic_newest[topic] = max(topic_newest.get(topic, NEVER), source.clock)
        return min(self._hold(source, topic_newest[topic], newest, now) for (topic, _), source in self.sources.items())

    def _hold(self, source: Source[T], topic_newest: int, newest: int, now: float) -> int:
        """How far back ``source`` holds the watermark: its time, unless it is quiet at its end. A quiet source
        that has spoken may still bring its next record at its own time (a worker catching up closes one
        partition's bars ahead of another's), so only the skew bound moves it on; one that never spoke may
        have no key hashing to it, so its topic's newest time speaks for it."""
        if not source.at_end or now - source.heard < self.quiet_after_s:
            return source.clock
        floor = newest - self.max_skew_ms
        return max(topic_newest if source.clock == NEVER else source.clock, floor)

    def idle(self) -> bool:
        """Every source at its end: what is queued is all there is for now."""
        return all(s.at_end for s in self.sources.values())

    def release(self, flush: bool = False, now: float = 0.0) -> Iterator[tuple[str, int, int, T]]:
        """(topic, partition, offset, item) of every record below the watermark (all when ``flush``), in order."""
        limit = 2**62 if flush else self.watermark(now)
        heads = [
            (source.queue[0][0], self.ranks.get(topic, 0), partition, topic)
            for (topic, partition), source in self.sources.items()
            if source.queue
        ]
        heapq.heapify(heads)
        while heads and heads[0][0] < limit:
            _, rank, partition, topic = heapq.heappop(heads)
            source = self.sources[(topic, partition)]
            clock, offset, item = source.queue.popleft()
            source.released, source.next_offset = clock, offset + 1
            if source.queue:
                heapq.heappush(heads, (source.queue[0][0], rank, partition, topic))
            yield topic, partition, offset, item

    def positions(self) -> dict[str, list[int]]:
        """Per source, [offset to resume from, time of the last record released]: what a restart needs."""
        return {
            f"{topic}:{partition}": [s.queue[0][1] if s.queue else s.next_offset, s.released]
            for (topic, partition), s in sorted(self.sources.items())
        }

    def pending(self) -> int:
        return sum(len(s.queue) for s in self.sources.values())
