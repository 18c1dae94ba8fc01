from __future__ import annotations

import pytest

from aiodirac import FINAL_STATUSES, JobState, JobStatus
from aiodirac._job._status import DIRAC_FINAL_STATUSES


def test_sixteen_statuses_with_dirac_levels() -> None:
    assert len(JobStatus) == 16
    assert [s.level for s in sorted(JobStatus, key=lambda s: s.level)] == list(range(16))
    assert JobStatus("Done") is JobStatus.DONE


def test_final_sets_match_dirac() -> None:
    assert {str(s) for s in DIRAC_FINAL_STATUSES} == {"Done", "Completed", "Failed", "Killed"}
    # One meaning of final: the exported set is what JobStatus.final says (Deleted included).
    assert (
        {s for s in JobStatus if s.final}
        == FINAL_STATUSES
        == DIRAC_FINAL_STATUSES | {JobStatus.DELETED}
    )
    assert JobStatus.DELETED.really_final
    assert JobStatus.DELETED.final
    assert not JobStatus.RUNNING.final


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        ("Submitting", "Received", True),
        ("Submitting", "Running", False),
        ("Received", "Waiting", True),
        ("Waiting", "Running", False),
        ("Matched", "Running", True),
        ("Running", "Received", True),
        ("Done", "Killed", False),
        ("Done", "Deleted", True),
        ("Failed", "Rescheduled", True),
        ("Killed", "Deleted", True),
        ("Deleted", "Running", False),
        ("Completed", "Done", True),
    ],
)
def test_transitions_follow_dirac_matrix(current: str, target: str, allowed: bool) -> None:
    assert JobStatus(current).can_move_to(JobStatus(target)) is allowed


def test_job_state_as_dirac() -> None:
    state = JobState(7, JobStatus.DONE, "Execution Complete", "Unknown", "Local.vm")
    assert state.final
    assert state.as_dirac() == {
        "Status": "Done",
        "MinorStatus": "Execution Complete",
        "ApplicationStatus": "Unknown",
        "Site": "Local.vm",
    }


def _reference_matrix() -> list[list[str]]:
    from pathlib import Path

    ref = Path(__file__).resolve().parent / "reference/dirac/status_model.md"
    rows = [line for line in ref.read_text().splitlines() if line.startswith("| **")]
    return [[c.strip().strip("*") for c in row.strip("|").split("|")] for row in rows]


def test_every_pair_against_dirac_reference_matrix() -> None:
    rows = _reference_matrix()
    header = [s.value for s in sorted(JobStatus, key=lambda s: s.level)]
    # the matrix's columns are in JOB_STATES order, not level order
    columns = ["Submitting", "Received", "Checking", "Scouting", "Staging", "Waiting", "Matched"]
    columns += ["Rescheduled", "Running", "Stalled", "Completing", "Completed", "Done", "Failed"]
    columns += ["Killed", "Deleted"]
    assert sorted(columns) == sorted(header)
    assert len(rows) == 16
    for row in rows:
        current = JobStatus(row[0])
        for target_name, cell in zip(columns, row[1:], strict=True):
            accepted = cell == "✓"
            if current is JobStatus.DELETED:
                # DIRAC's getNextState lets anything out of Deleted, setState keeps it: we keep it.
                assert current.can_move_to(JobStatus(target_name)) is (target_name == "Deleted")
            else:
                assert current.can_move_to(JobStatus(target_name)) is accepted, (
                    current,
                    target_name,
                )
