"""What a campaign report is drawn from: the campaign's history, column by column.

The campaign's journal loader builds a :class:`ReportData`; :func:`aiodirac.write_report` turns it
into an HTML page. Four tables hold the history: every status change observed (``transitions``),
every job ID recorded (``submissions``), every retry (``retries``) and every download outcome
(``downloads``). Times are seconds since the epoch (UTC).

A campaign of 100,000 jobs has about half a million status changes, so each table keeps one
:class:`array.array` per numeric field and one :class:`Labels` column (small integer codes plus
the distinct strings) per text field, instead of one object per row: building them from journal
rows is several times faster and several times smaller, and the report aggregates whole columns
at once. Iterating a table still yields one frozen row object (:class:`Transition`, ...) at a
time, for code that reads a few rows. Tables are built once by ``from_rows`` and never changed.

Usage::

    transitions = Transitions.from_rows(
        [(17, 1, "Running", "Application", "", "LCG.CERN.ch", 1_790_000_000.0)]
    )
    data = ReportData(
        campaign="scan", backend="local", created=1_789_999_990.0, jobs=1,
        transitions=transitions, submissions=Submissions.from_rows([(17, 1, 1_789_999_991.0)]),
        retries=Retries.from_rows([]), downloads=Downloads.from_rows([]),
        ended=None, outcome="running",
    )
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from aiodirac._exceptions import InvalidArgumentError

__all__ = [
    "DownloadOutcome",
    "Downloads",
    "Labels",
    "ReportData",
    "Retries",
    "Retry",
    "Submission",
    "Submissions",
    "Transition",
    "Transitions",
]


@dataclass(frozen=True, slots=True)
class Transition:
    """One status change the campaign observed for one attempt of one job.

    Attributes:
        job_id: the job's ID (a reschedule keeps it; a resubmission has a new one).
        attempt: 1 for the first run of the concrete job, 2 for its first retry, ...
        status: the new DIRAC status (``"Running"``, ``"Done"``, ``"Failed"``, ...).
        minor_status: the server's minor status at that moment.
        application_status: the job's application status at that moment.
        site: the site the job was at (``""`` before matching).
        time: when the server says it changed, in seconds since the epoch.

    Usage: ``for t in data.transitions: print(t.job_id, t.status)``
    """

    job_id: int
    attempt: int
    status: str
    minor_status: str
    application_status: str
    site: str
    time: float


@dataclass(frozen=True, slots=True)
class Submission:
    """A job ID recorded (confirmed) for one attempt of a concrete job.

    Attributes:
        job_id: the ID the server gave.
        attempt: which attempt this ID runs (1 for the first submission).
        time: when the ID was recorded, in seconds since the epoch.

    Usage: ``for s in data.submissions: print(s.job_id, s.attempt)``
    """

    job_id: int
    attempt: int
    time: float


@dataclass(frozen=True, slots=True)
class Retry:
    """One retry of a failed job.

    Attributes:
        job_id: the job that failed.
        new_job_id: the job that runs the next attempt: ``job_id`` itself for a reschedule,
            a new ID for a resubmission.
        attempt: the attempt number of the new run (2 for the first retry).
        time: when the retry was made, in seconds since the epoch.
        reason: why the job counted as failed (e.g. its status and minor status).

    Usage: ``for r in data.retries: print(r.job_id, "->", r.new_job_id)``
    """

    job_id: int
    new_job_id: int
    attempt: int
    time: float
    reason: str


@dataclass(frozen=True, slots=True)
class DownloadOutcome:
    """The end of one job's output download.

    Attributes:
        job_id: the job whose outputs were fetched.
        ok: whether they were fetched and unpacked.
        bytes: the size written (0 when it failed).
        time: when it ended, in seconds since the epoch.
        error: why it failed (``""`` when it did not).

    Usage: ``failed = [d.job_id for d in data.downloads if not d.ok]``
    """

    job_id: int
    ok: bool
    bytes: int
    time: float
    error: str


class Labels(Sequence[str]):
    """A text column: one small integer code per row, and the distinct strings the codes name.

    Attributes:
        codes: ``array('i')``, one code per row; ``labels[codes[i]]`` is row ``i``'s string.
        labels: the distinct strings, in order of first appearance.

    Usage: ``sites = transitions.site; print(sites[0], len(sites.labels))``
    """

    __slots__ = ("codes", "labels")

    def __init__(self, codes: array[int], labels: tuple[str, ...]) -> None:
        self.codes = codes
        self.labels = labels

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        labels = self.labels
        if isinstance(index, slice):
            return [labels[code] for code in self.codes[index]]
        return labels[self.codes[index]]

    def __iter__(self) -> Iterator[str]:
        labels = self.labels
        return (labels[code] for code in self.codes)

    def __eq__(self, other: object) -> bool:
        # Equal when they spell the same strings, whatever codes each chose.
        if not isinstance(other, Labels):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Labels({len(self.codes)} rows, {len(self.labels)} distinct)"


class _LabelsBuilder:
    """Collects a text column row by row (``append``), then freezes it (``build``)."""

    __slots__ = ("codes", "index")

    def __init__(self) -> None:
        self.codes: array[int] = array("i")
        self.index: dict[str, int] = {}

    def append(self, value: str) -> None:
        index = self.index
        code = index.get(value)
        if code is None:
            if not isinstance(value, str):
                raise TypeError(f"expected a string, got {type(value).__name__}")
            code = index[value] = len(index)
        self.codes.append(code)

    def build(self) -> Labels:
        return Labels(self.codes, tuple(self.index))


R = TypeVar("R")


class _Table(Generic[R]):
    """Shared behaviour of the four tables: built from row tuples, iterated as row objects.

    A subclass is a frozen slotted dataclass whose fields are the columns, in the order of its
    row type's fields; ``_kinds`` gives each column's kind: ``"q"`` integers, ``"d"`` floats,
    ``"b"`` booleans (stored as 0/1), ``"s"`` text (a :class:`Labels`).
    """

    __slots__ = ()
    _row: ClassVar[type[Any]]
    _kinds: ClassVar[str]

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]]) -> Self:
        """Build the table from rows given as tuples in the row type's field order.

        Args:
            rows: any iterable of tuples (a list, a generator, an ``sqlite3`` cursor).

        Returns:
            The table, one column per field.

        Raises:
            InvalidArgumentError: a row has the wrong number of values or a value of the
                wrong type.

        Usage: ``Submissions.from_rows(db.execute("SELECT job_id, attempt, time FROM ..."))``
        """
        columns: list[array[Any] | _LabelsBuilder] = [
            _LabelsBuilder() if kind == "s" else array("q" if kind == "b" else kind)
            for kind in cls._kinds
        ]
        appends = [column.append for column in columns]
        number = 0
        row: Sequence[Any] = ()
        try:
            for number, row in enumerate(rows, 1):  # noqa: B007 - read in the error message
                for append, value in zip(appends, row, strict=True):
                    append(value)
        except (TypeError, ValueError, OverflowError) as exc:
            names = ", ".join(f.name for f in fields(cls._row))
            width = len(row) if isinstance(row, Sequence) else "?"
            why = f"it has {width} values" if width != len(cls._kinds) else str(exc)
            raise InvalidArgumentError(
                f"{cls.__name__} row {number} is not ({names}): {why}"
            ) from exc
        built = [c.build() if isinstance(c, _LabelsBuilder) else c for c in columns]
        return cls(*built)

    def __len__(self) -> int:
        first = getattr(self, fields(self._row)[0].name)
        return len(first)

    def __iter__(self) -> Iterator[R]:
        row = self._row
        kinds = self._kinds
        columns = [getattr(self, f.name) for f in fields(row)]
        for values in zip(*columns, strict=True):
            yield row(*(bool(v) if k == "b" else v for k, v in zip(kinds, values, strict=True)))


@dataclass(frozen=True, slots=True, eq=True)
class Transitions(_Table[Transition]):
    """Every status change observed, one column per :class:`Transition` field.

    Usage: ``Transitions.from_rows([(17, 1, "Done", "Execution Complete", "", "LCG.CERN.ch", t)])``
    """

    _row: ClassVar[type[Any]] = Transition
    _kinds: ClassVar[str] = "qqssssd"

    job_id: array[int]
    attempt: array[int]
    status: Labels
    minor_status: Labels
    application_status: Labels
    site: Labels
    time: array[float]


@dataclass(frozen=True, slots=True, eq=True)
class Submissions(_Table[Submission]):
    """Every job ID recorded, one column per :class:`Submission` field.

    Usage: ``Submissions.from_rows([(17, 1, 1_790_000_000.0)])``
    """

    _row: ClassVar[type[Any]] = Submission
    _kinds: ClassVar[str] = "qqd"

    job_id: array[int]
    attempt: array[int]
    time: array[float]


@dataclass(frozen=True, slots=True, eq=True)
class Retries(_Table[Retry]):
    """Every retry made, one column per :class:`Retry` field.

    Usage: ``Retries.from_rows([(17, 18, 2, 1_790_000_100.0, "Failed: Stalled")])``
    """

    _row: ClassVar[type[Any]] = Retry
    _kinds: ClassVar[str] = "qqqds"

    job_id: array[int]
    new_job_id: array[int]
    attempt: array[int]
    time: array[float]
    reason: Labels


@dataclass(frozen=True, slots=True, eq=True)
class Downloads(_Table[DownloadOutcome]):
    """Every download outcome, one column per :class:`DownloadOutcome` field.

    ``ok`` is stored as 0/1 integers; iterating yields ``bool`` values.

    Usage: ``Downloads.from_rows([(17, True, 2048, 1_790_000_200.0, "")])``
    """

    _row: ClassVar[type[Any]] = DownloadOutcome
    _kinds: ClassVar[str] = "qbqds"

    job_id: array[int]
    ok: array[int]
    bytes: array[int]
    time: array[float]
    error: Labels


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything a campaign report shows.

    Attributes:
        campaign: the campaign's name.
        backend: where it ran (``"local"``, a DiracX URL, ...).
        created: when the campaign started, in seconds since the epoch.
        jobs: how many concrete jobs the campaign has (each counted once, however many attempts).
        transitions: every status change observed.
        submissions: every job ID recorded.
        retries: every retry made.
        downloads: every download outcome.
        ended: when the campaign ended, or ``None`` while it runs.
        outcome: how it ended, in words (``"complete"``, ``"gave up on 12 jobs"``, ``"running"``).

    Usage: ``write_report(data, "report.html")``
    """

    campaign: str
    backend: str
    created: float
    jobs: int
    transitions: Transitions
    submissions: Submissions
    retries: Retries
    downloads: Downloads
    ended: float | None
    outcome: str
