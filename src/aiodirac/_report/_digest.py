"""Reduce a campaign's history to the few hundred numbers its report draws.

Every figure of the report is drawn from a :class:`Digest`, never from the rows themselves: a
campaign of 100,000 jobs has half a million status changes, and a figure with a point per job
would be slow to write and to open. Whole columns are binned with numpy, so digesting takes a
fraction of a second.

Three kinds of identity appear in the history:

- an *attempt* is one run of one job ID: ``(job_id, attempt)``;
- a *concrete job* is the job the user asked for, whatever the attempts: a resubmission gives
  it a new job ID (linked by a :class:`~aiodirac._report._data.Retry`), a reschedule keeps it;
- the *campaign* has ``ReportData.jobs`` concrete jobs.

The status chart counts concrete jobs (each in the status of its latest attempt), so its layers
add up to the jobs submitted so far; the waiting, running and failure figures count attempts.

Usage::

    digest = digest_report(data)
    print(digest.final_counts)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aiodirac._job._status import JobStatus
from aiodirac._text import inert

from ._data import Labels, ReportData

__all__ = ["Digest", "TimeUnit", "digest_report"]

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

# Status chart resolution: enough for a smooth area, few enough for a small SVG.
STATUS_BINS = 240
RATE_BINS = 60
# The most bars a "by site" or "by minor status" chart shows; the rest are summed as "others".
TOP = 12

# DIRAC's order (JobStatus.level): the status chart stacks them bottom-up in this order.
KNOWN_STATUSES: tuple[str, ...] = tuple(s.value for s in sorted(JobStatus, key=lambda s: s.level))
FINAL = frozenset(s.value for s in JobStatus if s.final)
FAILED = frozenset({JobStatus.FAILED.value, JobStatus.STALLED.value})
_ATTEMPT_BITS = 20  # an attempt number above a million is clipped (no campaign retries that often)


@dataclass(frozen=True, slots=True)
class TimeUnit:
    """The unit a report's time axes use, chosen from the campaign's length.

    Attributes:
        name: ``"s"``, ``"min"``, ``"h"`` or ``"days"``.
        seconds: how many seconds one unit is.

    Usage: ``TimeUnit.for_span(7200.0).name`` -> ``"min"``
    """

    name: str
    seconds: float

    @classmethod
    def for_span(cls, seconds: float) -> TimeUnit:
        """The unit that shows a span of ``seconds`` with numbers from 0 to a few hundred."""
        for name, size in (("s", 1.0), ("min", 60.0), ("h", 3600.0)):
            if seconds <= 200 * size:
                return cls(name, size)
        return cls("days", 86400.0)


@dataclass(frozen=True, slots=True)
class Digest:
    """What the report draws, reduced from a :class:`ReportData`.

    Attributes:
        start: the campaign's first moment (seconds since the epoch).
        end: its last moment (``ended``, or the last event while it runs).
        unit: the unit of every time axis.
        edges: the status chart's sample times, in ``unit`` since ``start``.
        statuses: the statuses seen, in DIRAC's order (unknown ones last).
        counts: concrete jobs per status at each sample time, shape ``(statuses, edges)``.
        rate_edges: the rate chart's bin edges, in ``unit`` since ``start``.
        submitted: job IDs recorded per bin of the rate chart.
        finished: attempts that reached each final status per bin, keyed by status.
        waiting: per attempt, seconds from submission to its first ``Running``.
        running: per attempt, seconds from its first ``Running`` to its first final status.
        failures_by_site: ``(site, failed attempts)``, most first (the rest as one entry).
        failures_by_minor: ``(minor status, failed attempts)``, most first, likewise.
        attempts: ``(attempts, concrete jobs)`` for each attempt count seen.
        final_counts: ``(status, concrete jobs)``: the status of each job's latest attempt.
        download_times: each download's end, in ``unit`` since ``start``, in time order.
        download_ok: whether each of those downloads succeeded.
        download_bytes: the bytes downloaded in all.
        download_errors: ``(error, downloads)``, most first, likewise.
        retries: how many retries were made.

    Usage: ``digest_report(data).final_counts``
    """

    start: float
    end: float
    unit: TimeUnit
    edges: Floats
    statuses: tuple[str, ...]
    counts: Ints
    rate_edges: Floats
    submitted: Ints
    finished: dict[str, Ints]
    waiting: Floats
    running: Floats
    failures_by_site: tuple[tuple[str, int], ...]
    failures_by_minor: tuple[tuple[str, int], ...]
    attempts: tuple[tuple[int, int], ...]
    final_counts: tuple[tuple[str, int], ...]
    download_times: Floats
    download_ok: npt.NDArray[np.bool_]
    download_bytes: int
    download_errors: tuple[tuple[str, int], ...]
    retries: int


def digest_report(data: ReportData) -> Digest:
    """Reduce ``data`` to the numbers the report draws.

    Args:
        data: the campaign's history.

    Returns:
        The digest; its size does not grow with the number of jobs (beyond the per-attempt
        durations and download times, one float each).

    Usage: ``digest = digest_report(data)``
    """
    tr = data.transitions
    job = np.asarray(tr.job_id, dtype=np.int64)
    attempt = np.asarray(tr.attempt, dtype=np.int64)
    time = np.asarray(tr.time, dtype=np.float64)
    statuses, status = _status_codes(tr.status)
    failed_codes = _codes(statuses, FAILED)
    final_codes = _codes(statuses, FINAL)

    sub_job = np.asarray(data.submissions.job_id, dtype=np.int64)
    sub_attempt = np.asarray(data.submissions.attempt, dtype=np.int64)
    sub_time = np.asarray(data.submissions.time, dtype=np.float64)
    dl_time = np.asarray(data.downloads.time, dtype=np.float64)

    moments = [t for t in (time, sub_time, dl_time) if len(t)]
    first = min([data.created, *(float(t.min()) for t in moments)])
    last = (
        data.ended if data.ended is not None else max([first, *(float(t.max()) for t in moments)])
    )
    end = max(last, first + 1.0)
    unit = TimeUnit.for_span(end - first)

    # Attempts, ordered by (attempt key, time): the per-attempt figures read this order.
    key = (job << _ATTEMPT_BITS) | np.clip(attempt, 0, (1 << _ATTEMPT_BITS) - 1)
    sub_key = (sub_job << _ATTEMPT_BITS) | np.clip(sub_attempt, 0, (1 << _ATTEMPT_BITS) - 1)
    order = np.lexsort((time, key))
    key, time_k, status_k = key[order], time[order], status[order]
    waiting, running = _durations(key, time_k, status_k, statuses, final_codes, sub_key, sub_time)
    by_site, by_minor = _failures(key, status_k, order, failed_codes, tr.site, tr.minor_status)

    root = _roots(job, data)
    sub_root = _roots(sub_job, data)
    edges = np.linspace(first, end, STATUS_BINS + 1)
    counts, finished_at, final_status, chain_attempts = _status_lines(
        root, time, status, attempt, sub_root, sub_time, sub_attempt, statuses, edges
    )
    rate_edges = np.linspace(first, end, RATE_BINS + 1)
    finished = {
        statuses[code]: np.histogram(finished_at[1][finished_at[0] == code], rate_edges)[0]
        for code in final_codes
        if np.any(finished_at[0] == code)
    }
    final_counts = np.bincount(final_status, minlength=len(statuses))
    attempt_numbers, attempt_counts = np.unique(chain_attempts, return_counts=True)

    dl_order = np.argsort(dl_time, kind="stable")
    dl_ok = np.asarray(data.downloads.ok, dtype=np.int64).astype(bool)
    errors = data.downloads.error
    return Digest(
        start=first,
        end=end,
        unit=unit,
        edges=(edges - first) / unit.seconds,
        statuses=statuses,
        counts=counts,
        rate_edges=(rate_edges - first) / unit.seconds,
        submitted=np.histogram(sub_time, rate_edges)[0],
        finished=finished,
        waiting=waiting,
        running=running,
        failures_by_site=by_site,
        failures_by_minor=by_minor,
        attempts=tuple(
            (int(n), int(c)) for n, c in zip(attempt_numbers, attempt_counts, strict=True)
        ),
        final_counts=tuple((statuses[code], int(c)) for code, c in enumerate(final_counts) if c),
        download_times=(dl_time[dl_order] - first) / unit.seconds,
        download_ok=dl_ok[dl_order],
        download_bytes=int(np.asarray(data.downloads.bytes, dtype=np.int64).sum()),
        download_errors=_top(np.asarray(errors.codes)[~dl_ok], errors.labels),
        retries=len(data.retries),
    )


def _status_codes(column: Labels) -> tuple[tuple[str, ...], Ints]:
    """The statuses seen (plus Received, which every job starts in) and each row's index."""
    seen = set(column.labels) | {JobStatus.RECEIVED.value}
    ordered = tuple(s for s in KNOWN_STATUSES if s in seen) + tuple(
        sorted(seen.difference(KNOWN_STATUSES))
    )
    remap = np.array([ordered.index(s) for s in column.labels], dtype=np.int64)
    codes = np.asarray(column.codes, dtype=np.int64)
    return ordered, remap[codes] if len(codes) else codes


def _codes(statuses: tuple[str, ...], wanted: frozenset[str]) -> Ints:
    """The indices of ``wanted`` statuses in ``statuses``, in that order (never a set's)."""
    return np.array([i for i, s in enumerate(statuses) if s in wanted], dtype=np.int64)


def _roots(ids: Ints, data: ReportData) -> Ints:
    """The first job ID of each job's concrete job: resubmissions are followed back."""
    old = np.asarray(data.retries.job_id, dtype=np.int64)
    new = np.asarray(data.retries.new_job_id, dtype=np.int64)
    moved = new != old
    if not moved.any():
        return ids
    order = np.argsort(new[moved], kind="stable")
    children, parents = new[moved][order], old[moved][order]
    roots = ids.copy()
    for _ in range(len(children)):  # each step goes one retry back; a loop in bad data ends too
        at = np.minimum(np.searchsorted(children, roots), len(children) - 1)
        found = children[at] == roots
        if not found.any():
            break
        roots[found] = parents[at[found]]
    return roots


def _firsts(key: Ints, mask: npt.NDArray[np.bool_], values: Floats) -> tuple[Ints, Floats]:
    """For rows sorted by key: the keys where ``mask`` holds, and the first value of each."""
    unique, index = np.unique(key[mask], return_index=True)
    return unique, values[mask][index]


def _durations(
    key: Ints,
    time: Floats,
    status: Ints,
    statuses: tuple[str, ...],
    final_codes: Ints,
    sub_key: Ints,
    sub_time: Floats,
) -> tuple[Floats, Floats]:
    """Per attempt: seconds waiting (submission to first Running), running (to first final)."""
    if JobStatus.RUNNING.value not in statuses:
        return np.empty(0), np.empty(0)
    run_keys, run_start = _firsts(key, status == statuses.index(JobStatus.RUNNING.value), time)
    # An attempt starts when its ID was recorded, or when first seen if the ID was not recorded.
    seen_keys, seen_at = _firsts(key, np.ones(len(key), dtype=bool), time)
    sub_order = np.lexsort((sub_time, sub_key))
    sub_keys, sub_at = _firsts(
        sub_key[sub_order], np.ones(len(sub_key), dtype=bool), sub_time[sub_order]
    )
    began = seen_at[np.searchsorted(seen_keys, run_keys)]
    if len(sub_keys):
        at = np.minimum(np.searchsorted(sub_keys, run_keys), len(sub_keys) - 1)
        recorded = sub_keys[at] == run_keys
        began[recorded] = np.minimum(began[recorded], sub_at[at[recorded]])
    waiting = np.maximum(run_start - began, 0.0)

    ran = np.isin(status, final_codes) & np.isin(key, run_keys)
    end_keys, end_at = _firsts(key, ran, time)
    started = run_start[np.searchsorted(run_keys, end_keys)]
    return waiting, np.maximum(end_at - started, 0.0)


def _failures(
    key: Ints,
    status: Ints,
    order: Ints,
    failed_codes: Ints,
    site: Labels,
    minor: Labels,
) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
    """Attempts whose last status is Failed or Stalled, counted by site and by minor status."""
    if not len(key):
        return (), ()
    last = np.ones(len(key), dtype=bool)
    last[:-1] = key[1:] != key[:-1]
    failed = last & np.isin(status, failed_codes)
    minor_codes = np.asarray(minor.codes, dtype=np.int64)[order]
    # The site: the last one the attempt reported (a failure's own row may carry none).
    no_site = len(site.labels)
    site_codes = np.asarray(site.codes, dtype=np.int64)[order]
    if "" in site.labels:
        site_codes[site_codes == site.labels.index("")] = no_site
    known = site_codes != no_site
    known_keys, index = np.unique(key[known][::-1], return_index=True)
    last_site = site_codes[known][::-1][index]
    failed_keys = key[failed]
    sites = np.full(len(failed_keys), no_site)
    if len(known_keys):
        at = np.minimum(np.searchsorted(known_keys, failed_keys), len(known_keys) - 1)
        has_site = known_keys[at] == failed_keys
        sites[has_site] = last_site[at[has_site]]
    labels = (*site.labels, "(no site)")
    return _top(sites, labels), _top(minor_codes[failed], minor.labels)


def _top(codes: Ints, labels: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """``(label, count)`` for the most frequent codes, the others summed as one entry.

    Labels come from the server or from jobs: each is made :func:`~aiodirac._text.inert`.
    """
    if not len(codes):
        return ()
    counts = np.bincount(codes, minlength=len(labels))
    ranked = sorted(((int(c), labels[i]) for i, c in enumerate(counts) if c), key=lambda x: -x[0])
    shown = [(inert(label) or "(none)", c) for c, label in ranked[:TOP]]
    rest = sum(c for c, _ in ranked[TOP:])
    if rest:
        shown.append((f"{len(ranked) - TOP} others", rest))
    return tuple(shown)


def _status_lines(
    root: Ints,
    time: Floats,
    status: Ints,
    attempt: Ints,
    sub_root: Ints,
    sub_time: Floats,
    sub_attempt: Ints,
    statuses: tuple[str, ...],
    edges: Floats,
) -> tuple[Ints, tuple[Ints, Floats], Ints, Ints]:
    """Concrete jobs per status at each edge; when each attempt became final; last statuses.

    A recorded ID is a move to Received at its recording time, before what the server reports
    for that attempt; when the server's clock says earlier, the recording takes that time.
    """
    received = statuses.index(JobStatus.RECEIVED.value)
    every_root = np.concatenate([sub_root, root])
    every_time = np.concatenate([sub_time, time])
    every_status = np.concatenate([np.full(len(sub_root), received), status])
    every_attempt = np.concatenate([sub_attempt, attempt])
    synthetic = np.concatenate([np.zeros(len(sub_root), bool), np.ones(len(root), bool)])
    # Order by concrete job, then attempt, then time; a recording before the server's rows.
    order = np.lexsort((every_time, synthetic, every_attempt, every_root))
    r, t, s, a = every_root[order], every_time[order], every_status[order], every_attempt[order]
    n = len(r)
    new_chain = np.ones(n, dtype=bool)
    new_chain[1:] = r[1:] != r[:-1]
    t = _monotone(t, np.cumsum(new_chain), edges[0], edges[-1])
    previous = np.empty(n, dtype=np.int64)
    if n:
        previous[0] = -1
        previous[1:] = s[:-1]
    previous[new_chain] = -1
    moved = previous != s

    slot = np.searchsorted(edges, t, side="left")
    width = len(edges) + 1
    k = len(statuses)
    up = np.bincount(s[moved] * width + slot[moved], minlength=k * width)
    leaving = moved & (previous >= 0)
    down = np.bincount(previous[leaving] * width + slot[leaving], minlength=k * width)
    counts = np.cumsum((up - down).reshape(k, width), axis=1)[:, : len(edges)]

    final_codes = _codes(statuses, FINAL)
    became_final = moved & np.isin(s, final_codes) & ~np.isin(previous, final_codes)

    last = np.ones(n, dtype=bool)
    last[:-1] = r[1:] != r[:-1]
    chain_attempts = np.maximum.reduceat(a, np.flatnonzero(new_chain)) if n else a
    return counts, (s[became_final], t[became_final]), s[last], chain_attempts


def _monotone(time: Floats, chain: Ints, first: float, end: float) -> Floats:
    """Each row's time, lowered to the earliest time after it in its chain (rows in order)."""
    if not len(time):
        return time
    # Offsetting each chain above the previous ones lets one running minimum (from the end)
    # stop at chain boundaries: relative times stay well inside float64's exact range.
    relative = np.clip(time - first, 0.0, None)
    gap = 2.0 * max(end - first, float(relative.max())) + 1.0
    shifted = relative + chain * gap
    lowered: Floats = np.minimum.accumulate(shifted[::-1])[::-1] - chain * gap + first
    return lowered
