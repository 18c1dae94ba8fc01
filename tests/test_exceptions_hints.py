"""DiracError's per-interface hints: the message says what happened, each interface what to do."""

from __future__ import annotations

import pytest

from aiodirac import ConfigurationError, DiracError, JobNotFoundError


def test_str_is_the_python_reading() -> None:
    exc = ConfigurationError("no server").with_hints(python="pass url=...", cli="give --url URL")
    assert str(exc) == "no server: pass url=..."
    assert exc.explain("cli") == "no server: give --url URL"
    assert exc.explain() == str(exc)


def test_no_hint_for_an_interface_is_the_message_alone() -> None:
    exc = JobNotFoundError("job 7 is unknown", job_ids=(7,)).with_hints(python="check the ID")
    assert exc.explain("cli") == "job 7 is unknown"
    assert exc.job_ids == (7,)
    assert str(DiracError("plain")) == "plain"
    assert DiracError("plain").explain("cli") == "plain"


def _fail() -> None:
    try:
        raise OSError("disk")
    except OSError as cause:
        raise ConfigurationError("bad").with_hints(cli="fix it") from cause


def test_hints_survive_raise_from() -> None:
    with pytest.raises(ConfigurationError) as info:
        _fail()
    assert info.value.explain("cli") == "bad: fix it"
    assert isinstance(info.value.__cause__, OSError)
