"""The report's data tables: built from journal-like rows, read back as the same rows."""

from __future__ import annotations

import pytest

from aiodirac import InvalidArgumentError
from aiodirac._report import (
    DownloadOutcome,
    Downloads,
    Retries,
    Retry,
    Submission,
    Submissions,
    Transition,
    Transitions,
)

T0 = 1_790_000_000.0


def test_transitions_round_trip_rows() -> None:
    rows = [
        (17, 1, "Waiting", "Pilot Agent Submission", "", "", T0),
        (17, 1, "Running", "Application", "Running step 1", "LCG.CERN.ch", T0 + 5),
        (18, 2, "Failed", "Application Finished With Errors", "", "LCG.RAL.uk", T0 + 9.5),
    ]
    table = Transitions.from_rows(iter(rows))
    assert len(table) == 3
    assert list(table) == [Transition(*row) for row in rows]
    assert list(table.site) == ["", "LCG.CERN.ch", "LCG.RAL.uk"]
    assert table.site.labels == ("", "LCG.CERN.ch", "LCG.RAL.uk")
    assert table.status[2] == "Failed"
    assert table.status[-2:] == ["Running", "Failed"]


def test_other_tables_round_trip_rows() -> None:
    subs = [(17, 1, T0), (42, 2, T0 + 60)]
    retries = [(17, 42, 2, T0 + 59, "Failed: Stalled")]
    downloads = [(42, True, 2048, T0 + 90, ""), (18, False, 0, T0 + 91, "checksum mismatch")]
    assert list(Submissions.from_rows(subs)) == [Submission(*r) for r in subs]
    assert list(Retries.from_rows(retries)) == [Retry(*r) for r in retries]
    read = list(Downloads.from_rows(downloads))
    assert read == [DownloadOutcome(*r) for r in downloads]
    assert [type(d.ok) for d in read] == [bool, bool]


def test_equal_tables_compare_equal_whatever_their_codes() -> None:
    a = Transitions.from_rows([(1, 1, "Done", "", "", "A", T0), (2, 1, "Done", "", "", "B", T0)])
    b = Transitions.from_rows([(1, 1, "Done", "", "", "A", T0), (2, 1, "Done", "", "", "B", T0)])
    c = Transitions.from_rows([(1, 1, "Done", "", "", "A", T0), (2, 1, "Done", "", "", "C", T0)])
    assert a == b
    assert a != c
    assert Submissions.from_rows([]) == Submissions.from_rows([])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(1, 1)], "Submissions row 1 is not (job_id, attempt, time): it has 2 values"),
        ([(1, 1, T0), (2, 1, "soon")], "Submissions row 2"),
        ([(1, 1, T0, 4)], "it has 4 values"),
    ],
)
def test_bad_rows_are_a_typed_error(rows: list[tuple[object, ...]], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Submissions.from_rows(rows)


def test_text_columns_refuse_non_text() -> None:
    with pytest.raises(InvalidArgumentError, match="expected a string, got int"):
        Transitions.from_rows([(1, 1, 3, "", "", "", T0)])
