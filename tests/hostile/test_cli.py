"""The command line against the hostile server: escape sequences in every string a server or a
job supplies are shown inert (status, watch, output, errors; ``--json`` escaped), the token never
shows, and an untrusted certificate names ``--ca-bundle``, which then works."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from _archives import make_archive
from _checks import assert_contained, assert_no_token
from _server import TOKEN, FakeDiracX, FakeJob, HostileServer, Reply
from typer.testing import CliRunner

from aiodirac.cli._app import app

# Retitle the terminal, clear it, paint it red; an 8-bit CSI; a right-to-left override; a
# carriage return and backspaces that would overwrite what was printed.
EVIL = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mALL GOOD\x1b[0m\x9b31m\u202etxt.exe\r\x08\x08ok"
RAW = ["\x1b", "\x07", "\x9b", "\u202e", "\r", "\x08"]


def _inert(text: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} reached the terminal"
    assert_no_token(text)


@pytest.fixture
def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: HostileServer
) -> Callable[..., tuple[int, str, str]]:
    """Run ``aiodirac --url <hostile server> ARGS`` in this process, logged in with TOKEN."""
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"access_token": TOKEN, "expires_on": int(time.time()) + 3600}))
    monkeypatch.setenv("DIRACX_CREDENTIALS_PATH", str(creds))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, url: str | None = None) -> tuple[int, str, str]:
        result = runner.invoke(app, ["--url", url or server.url, *args], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


@pytest.fixture
def evil_jobs(fake: FakeDiracX) -> FakeDiracX:
    archive = make_archive({"std.out": b"fine\n"}, "tar.bz2")
    fake.jobs = {
        1: FakeJob(1, "Done", EVIL, EVIL, EVIL, sandbox=archive),
        2: FakeJob(2, "Failed", EVIL, application_status=EVIL, site=EVIL),
    }
    return fake


@pytest.mark.parametrize("mode", ["plain", "json", "summary"])
def test_status(cli, evil_jobs: FakeDiracX, mode: str) -> None:
    extra = {"plain": [], "json": ["--json"], "summary": ["--summary"]}[mode]
    code, out, err = cli("status", "1", "2", *extra)
    assert code == 1  # job 2 Failed
    _inert(out + err)
    if mode == "json":
        assert json.loads(out)["jobs"][0]["application_status"] == EVIL  # kept, escaped
    elif mode == "plain":
        assert "\\x1b]0;PWNED\\x07" in out  # shown, not obeyed


def test_watch(cli, evil_jobs: FakeDiracX) -> None:
    code, out, err = cli("watch", "1", "2", "--interval", "0.05")
    assert code == 1
    _inert(out + err)
    assert "ALL GOOD" in out


def test_output_with_hostile_member_names(cli, fake: FakeDiracX, tmp_path: Path) -> None:
    fake.jobs = {
        1: FakeJob(1, sandbox=make_archive({f"../{EVIL}": b"x"}, "tar.gz")),
        2: FakeJob(2, sandbox=make_archive({EVIL: b"x", f"{EVIL}/../x": b"y"}, "tar.zst")),
    }
    code, out, err = cli("output", "1", "2", "--dest", "out")
    assert code == 1
    _inert(out + err)
    assert "job 1:" in err
    assert_contained(tmp_path / "out")


def test_server_error_details_are_inert(cli, evil_jobs: FakeDiracX) -> None:
    evil_jobs.jobs[1].status = "Running"
    evil_jobs.override["status"] = Reply.json({"detail": EVIL}, 400)
    code, out, err = cli("kill", "1")
    assert code != 0
    _inert(out + err)
    assert "aiodirac: error:" in err


def test_debug_traceback_is_inert(cli, evil_jobs: FakeDiracX) -> None:
    evil_jobs.override["search"] = Reply.json(EVIL)
    code, out, err = cli("--debug", "status", "1")
    assert code != 0
    _inert(out + err)


@pytest.fixture
def tls_server(fake: FakeDiracX, tmp_path: Path) -> Iterator[tuple[HostileServer, Path]]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with HostileServer(fake, deadline=20.0, tls=context) as running:
        fake.base = running.url
        yield running, bundle


def test_untrusted_certificate_names_ca_bundle_which_then_works(
    cli, evil_jobs: FakeDiracX, tls_server: tuple[HostileServer, Path]
) -> None:
    server, bundle = tls_server
    code, out, err = cli("status", "1", url=server.url)
    assert code != 0
    assert "--ca-bundle" in err
    assert "verify=" not in err  # a CLI user has no verify= to give
    _inert(out + err)
    code, out, err = cli("--ca-bundle", str(bundle), "status", "1", url=server.url)
    assert code == 0, err
    assert "Done" in out
