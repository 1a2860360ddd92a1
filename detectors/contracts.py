"""The kinds of component in :mod:`tapewatch.detectors`, the one verb each kind takes its input by, and the state
methods every stateful one keeps (docs/detectors/index.md, *Components and their verbs*).

* A **stage** reacts to one event of the stream at a time, in the stream's order, and returns what the event closed
  or raised: ``on_<event>``, the event named alike in every component — ``on_quote``, ``on_book``, ``on_order``,
  ``on_execution``, ``on_bar``, ``on_chunk``, ``on_hit`` (and ``on_hits``, a chunk's hits at once). A stage that
  also takes an event's plain fields names that ``on_<event>_values``; one that holds records open until its
  watermark passes closes them at the end of the input with ``flush``. A component fed two events (the flow state:
  quotes and books, two topics with a watermark each) has one verb per event, not one verb that tells them apart.
* A **pattern detector** is the stage of one alert rule on the flow
  (:class:`~tapewatch.detectors.patterns.base.PatternDetector`): ``on_chunk``, with the record of its parameters
  (``PARAMS``) and what its evidence means (``EVIDENCE``).
* An **estimator** learns from the values it is shown and is read by a question of its own (``infer``,
  ``typical``, ``record``, ``at``, ``around``, ``value``): ``observe``. One may start from what a calibration learnt
  elsewhere (``seed``); one that accumulates a period still open folds it at the end of the input (``flush``).
* A **model** is fitted offline and only read in the stream: ``score`` (``score_<shape>`` where it scores several
  shapes). Its state is an artifact (``save``, ``load``, ``from_artifact``), never ``to_state``.

Every stage and estimator that keeps state gives it as JSON-safe data (``to_state``), and its class builds a new
instance restored from that (the classmethod ``from_state``, with what is configuration rather than state as further
arguments). The verb names the event or the observation, not the type of its argument: the feature state's
``on_bar`` takes the bar, the symbol detector's ``on_bar`` the bar's features. So these protocols fix the verb and
leave the arguments to each component's own signature; ``tests/unit/test_component_verbs.py`` holds every component
of ``detectors/`` to its kind.
"""

from __future__ import annotations

from typing import Any, Final, Protocol, Self, runtime_checkable

#: the events a stage takes, each by its verb ``on_<event>``
EVENTS: Final = ("quote", "book", "order", "execution", "bar", "chunk", "hit", "hits")


@runtime_checkable
class Stateful(Protocol):
    """Keeps state between inputs: ``to_state`` gives it as JSON-safe data, and the classmethod ``from_state`` builds a
    new instance restored from that (what is configuration rather than state as further arguments)."""

    def to_state(self) -> object: ...

    @classmethod
    def from_state(cls, *args: Any, **kwargs: Any) -> Self: ...


@runtime_checkable
class QuoteStage(Protocol):
    """Takes quotes (trades and snapshots)."""

    def on_quote(self, *args: Any, **kwargs: Any) -> object: ...


@runtime_checkable
class BookStage(Protocol):
    """Takes book snapshots."""

    def on_book(self, *args: Any, **kwargs: Any) -> object: ...


@runtime_checkable
class OrderStage(Protocol):
    """Takes market-by-order events."""

    def on_order(self, *args: Any, **kwargs: Any) -> object: ...


@runtime_checkable
class ExecutionStage(Protocol):
    """Takes a firm's execution reports (its drop copy)."""

    def on_execution(self, *args: Any, **kwargs: Any) -> object: ...


@runtime_checkable
class BarStage(Protocol):
    """Takes closed one-minute bars (or their features)."""

    def on_bar(self, *args: Any, **kwargs: Any) -> object: ...


@runtime_checkable
class ChunkStage(Protocol):
    """Takes closed flow chunks' features."""

    def on_chunk(self, *args: Any, **kwargs: Any) -> object: ...


@runtime_checkable
class HitStage(Protocol):
    """Takes detector hits."""

    def on_hit(self, *args: Any, **kwargs: Any) -> object: ...


@runtime_checkable
class Estimator(Protocol):
    """Learns from what it observes; read by a question of its own."""

    def observe(self, *args: Any, **kwargs: Any) -> object: ...
