"""The campaign examples, scaled down, on the local backend: results checked, resume proven."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from example_support import EXAMPLES, RunExample

from child_processes import child


def _sums(stdout: str) -> tuple[int, int]:
    match = re.search(r"sum of squares: (\d+) \(expected (\d+)\)", stdout)
    assert match, stdout
    return int(match[1]), int(match[2])


@pytest.mark.slow
def test_campaign_runs_and_a_second_run_submits_nothing(
    run_example: RunExample, tmp_path: Path
) -> None:
    args = ("--jobs", "25", "--journal", "c.db", "--dest", "out")
    first = run_example("campaign_10k.py", *args)
    assert first.returncode == 0, first.stderr
    total, expected = _sums(first.stdout)
    assert total == expected == sum(x * x for x in range(25))
    assert "25 jobs in the campaign, 25 new, 0 from an earlier run" in first.stdout
    assert len(list((tmp_path / "out").iterdir())) == 25

    second = run_example("campaign_10k.py", *args)
    assert second.returncode == 0, second.stderr
    assert "25 jobs in the campaign, 0 new, 25 from an earlier run" in second.stdout
    assert _sums(second.stdout) == (expected, expected)


@pytest.mark.slow
def test_campaign_size_from_the_environment(
    run_example: RunExample, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIODIRAC_EXAMPLE_JOBS", "4")
    run = run_example("campaign_10k.py")
    assert run.returncode == 0, run.stderr
    assert _sums(run.stdout) == (14, 14)


@pytest.mark.slow
def test_campaign_killed_then_resumed(run_example: RunExample, tmp_path: Path) -> None:
    args = ["--jobs", "60", "--journal", "k.db", "--dest", "out"]
    with child(
        [sys.executable, str(EXAMPLES / "campaign_10k.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    ) as process:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        for line in process.stdout:
            if line.startswith("submitted:") or time.monotonic() > deadline:
                break
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)

    resumed = run_example("campaign_10k.py", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert "60 jobs in the campaign, 0 new, 60 from an earlier run" in resumed.stdout
    assert _sums(resumed.stdout) == (sum(x * x for x in range(60)),) * 2


@pytest.mark.slow
def test_trio_campaign(run_example: RunExample) -> None:
    run = run_example("trio_campaign.py", "--jobs", "6", "--journal", "t.db", "--dest", "out")
    assert run.returncode == 0, run.stderr
    assert _sums(run.stdout) == (55, 55)
