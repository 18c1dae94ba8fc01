"""What one tracking session knows: each job's last state, which jobs are still polled, counts.

Shared by the poller, which folds the backend's answers in (:meth:`TrackState.diff`), and the
stream, which shows it to the consumer and adds or removes jobs.

Usage: ``state = TrackState(); state.add([1, 2], {})``
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType

from aiodirac._job._status import JobState, JobStatus

from ._events import JobEvent, JobVanished, TrackEvent, TrackSummary

__all__ = ["TrackState"]

_FINAL: frozenset[JobStatus] = frozenset(status for status in JobStatus if status.final)


class TrackState:
    """The bookkeeping of one tracking session (see the module docstring).

    Usage: ``state.summary().final``
    """

    def __init__(self) -> None:
        # Last known state of tracked jobs that were seen (vanished ones keep theirs).
        self.states: dict[int, JobState] = {}
        # Jobs still to poll: neither final nor vanished (unseen ones included).
        self.active: set[int] = set()
        self.vanished: set[int] = set()
        self.counts: Counter[JobStatus] = Counter()
        self.unseen = 0
        self.cycles = 0
        self.requests = 0
        self.events = 0
        self.poll_failures = 0
        self.failing = False

    def is_new(self, job_id: int) -> bool:
        """Whether ``job_id`` is not tracked (in any way) yet."""
        return not (job_id in self.active or job_id in self.states or job_id in self.vanished)

    def add(self, job_ids: Iterable[int], initial: Mapping[int, JobState]) -> int:
        added = 0
        for job_id in job_ids:
            if not self.is_new(job_id):
                continue
            state = initial.get(job_id)
            if state is None:
                self.unseen += 1
                self.active.add(job_id)
            else:
                self.states[job_id] = state
                self.counts[state.status] += 1
                if not state.status.final:
                    self.active.add(job_id)
            added += 1
        return added

    def remove(self, job_ids: Iterable[int]) -> int:
        """Stop tracking these jobs; how many were tracked."""
        removed = 0
        for job_id in job_ids:
            state = self.states.pop(job_id, None)
            if job_id in self.vanished:
                self.vanished.discard(job_id)
            elif state is not None:
                self.counts[state.status] -= 1
            elif job_id in self.active:
                self.unseen -= 1
            else:
                continue
            self.active.discard(job_id)
            removed += 1
        return removed

    def diff(
        self,
        asked: list[int],
        answer: Mapping[int, JobState],
        seen: datetime,
        events: list[TrackEvent],
        changed: list[JobState],
    ) -> None:
        """Fold one page's answer in: the events it makes go to ``events``, the new states to
        ``changed``; asked jobs missing from the answer have vanished."""
        states = self.states
        active = self.active
        counts = self.counts
        emit = events.append
        record = changed.append
        final = _FINAL
        make_event = JobEvent
        job_events = 0
        for job_id, new in answer.items():
            old = states.get(job_id)
            # Same Status, MinorStatus, ApplicationStatus and Site: no event (the time alone
            # does not count). Inlined: this runs once per polled job per cycle.
            if old is not None and (
                old is new
                or (
                    old.status == new.status
                    and old.minor_status == new.minor_status
                    and old.application_status == new.application_status
                    and old.site == new.site
                )
            ):
                continue
            if job_id not in active:
                continue  # removed while the page was in flight, or never asked
            states[job_id] = new
            status = new.status
            if old is None:
                self.unseen -= 1
            else:
                counts[old.status] -= 1
            counts[status] += 1
            if status in final:
                active.discard(job_id)
            emit(make_event(job_id, old, new, seen))
            record(new)
            job_events += 1
        self.events += job_events
        for job_id in asked:
            if job_id not in answer and job_id in active:
                active.discard(job_id)
                self.vanished.add(job_id)
                last = states.get(job_id)
                if last is None:
                    self.unseen -= 1
                else:
                    counts[last.status] -= 1
                events.append(JobVanished(job_id, last, seen))

    def final_states(self) -> dict[int, JobState]:
        """The last state of every tracked job that is final now.

        Usage: ``done = stream.final_states()``
        """
        return {
            job_id: state
            for job_id, state in self.states.items()
            if state.status.final and job_id not in self.vanished
        }

    def summary(self) -> TrackSummary:
        """Running totals: counts per status, final, pending, cycles, requests, events."""
        counts = {status: n for status, n in self.counts.items() if n}
        final = sum(n for status, n in counts.items() if status.final)
        total = len(self.states) + self.unseen
        return TrackSummary(
            counts=MappingProxyType(counts),
            unseen=self.unseen,
            vanished=len(self.vanished),
            total=total,
            final=final,
            cycles=self.cycles,
            requests=self.requests,
            events=self.events,
            poll_failures=self.poll_failures,
            failing=self.failing,
        )
