"""Work-arounds for faust-streaming 0.15.3 (with mode-streaming 0.7), applied by :func:`streams.app.create_app`.

**Lost first message after a table recovery.** When a worker starts (or a rebalance ends) and a table's
changelog had records to restore, faust resumes the flow of events during recovery, and at the end
(``Recovery.on_recovery_completed``) resumes the source partitions, awaits the seek to the committed offsets
and only then calls ``app.flow_control.resume()`` a second time. ``FlowControlEvent.resume()`` always clears
every channel queue, so a message the fetcher delivered in between (typically the first one after the
committed offset, whenever there is a backlog) is dropped from the agent's queue after the consumer
already moved past it: it is never processed, and since faust tolerates a gap of one offset when
committing, it is committed as if it had been. The integration test hits this about one run in ten.

The patch makes ``resume()`` a no-op when the flow is already active: the clear is only meant to drop what
was buffered before a suspension (a rebalance), and there is none in that case.

**Redelivery right after a table recovery.** In the same method faust resumes the source partitions before
the seek to the committed offsets, so events fetched in between are delivered twice. That is not patched
here; :class:`streams.bars.BarStage` skips offsets it has already made durable.
"""

from __future__ import annotations

from mode.utils.queues import FlowControlEvent

_PATCHED = "_tapewatch_patched"


def _resume_unless_active(self: FlowControlEvent) -> None:
    if self.is_active():
        return  # already flowing: clearing the queues now would drop live events
    _original_resume(self)


_original_resume = FlowControlEvent.resume


def apply() -> None:
    """Install the patches (idempotent)."""
    if not getattr(FlowControlEvent, _PATCHED, False):
        FlowControlEvent.resume = _resume_unless_active  # type: ignore[method-assign]
        setattr(FlowControlEvent, _PATCHED, True)
