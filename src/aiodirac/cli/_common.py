"""What every command shares: global options, exit codes, error lines, job ID arguments.

Commands are plain functions taking an :class:`Options` first; :func:`command` registers them
with the global options (``--backend``, ``--url``, ``--json``, ``--debug``, ``--quiet``) added,
so that ``aiodirac --json status 12`` and ``aiodirac status 12 --json`` both work.

Nothing here imports the library's engine: ``aiodirac --help`` stays fast.
"""

from __future__ import annotations

import enum
import functools
import inspect
import logging
import re
import shlex
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperCommand

from ._interrupt import INTERRUPTED_LINE
from ._options import Options
from ._output import error_text
from ._terminal_text import inert

if TYPE_CHECKING:
    from aiodirac._client import AsyncDirac
    from aiodirac._config import BackendChoice

__all__ = [
    "BackendName",
    "CommandAfterOptions",
    "ExitCode",
    "Options",
    "UsageProblem",
    "command",
    "exit_code_for",
    "make_client",
    "parse_ids",
    "run",
]


class ExitCode(enum.IntEnum):
    """What the ``aiodirac`` process exit status means.

    Usage: ``raise typer.Exit(ExitCode.JOBS_FAILED)``
    """

    OK = 0
    JOBS_FAILED = 1
    USAGE = 2
    SERVICE = 3
    INTERRUPTED = 130


class BackendName(enum.StrEnum):
    """The backends a user can name on the command line."""

    LOCAL = "local"
    DIRACX = "diracx"


class UsageProblem(Exception):
    """A command-line argument the command cannot use (exit code 2, one line on stderr).

    Usage: ``raise UsageProblem("--journal is required")``
    """


BackendOpt = Annotated[
    BackendName | None,
    typer.Option(
        "--backend",
        metavar="local|diracx",
        help="Where jobs run: 'local' (this machine) or 'diracx'. "
        "Default: $AIODIRAC_BACKEND, DiracX if $DIRACX_URL is set, else local.",
        show_default=False,
        rich_help_panel="Global options",
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help="DiracX server URL (implies --backend diracx).",
        show_default=False,
        rich_help_panel="Global options",
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Machine-readable JSON on stdout (stable keys).",
        rich_help_panel="Global options",
    ),
]
DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug", help="Show tracebacks and debug logs.", rich_help_panel="Global options"
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print only results: no progress, no notes.",
        rich_help_panel="Global options",
    ),
]

RateOpt = Annotated[
    float | None,
    typer.Option(
        "--rate",
        metavar="N",
        min=0.001,
        help="Requests per second to the service, at most (default: the settings file's "
        "[limits] rate, else 20).",
        show_default=False,
        rich_help_panel="Global options",
    ),
]
MaxInFlightOpt = Annotated[
    int | None,
    typer.Option(
        "--max-in-flight",
        metavar="N",
        min=1,
        help="Requests in progress at once, at most (default: the settings file's [limits] "
        "max_in_flight, else 8).",
        show_default=False,
        rich_help_panel="Global options",
    ),
]

CaBundleOpt = Annotated[
    str | None,
    typer.Option(
        "--ca-bundle",
        metavar="PATH",
        help="CA certificates that sign the DiracX server's and its sandbox storage's TLS "
        "certificates: a file, or a folder such as /etc/grid-security/certificates (default: "
        "$DIRACX_CA_PATH, else the settings file's [diracx] ca_path, else the system's).",
        show_default=False,
        rich_help_panel="Global options",
    ),
]

_COMMON: tuple[tuple[str, Any], ...] = (
    ("backend", BackendOpt),
    ("url", UrlOpt),
    ("json", JsonOpt),
    ("debug", DebugOpt),
    ("quiet", QuietOpt),
    ("rate", RateOpt),
    ("max_in_flight", MaxInFlightOpt),
    ("ca_bundle", CaBundleOpt),
)
_PREFIX = "global_"
#: Global options that take a value (the others are flags).
_VALUED = frozenset({"backend", "url", "rate", "max_in_flight", "ca_bundle"})


def options_from(ctx: typer.Context, local: dict[str, Any]) -> Options:
    """Merge the options given after the command with those given before it."""
    root = ctx.find_root()
    base = root.obj if isinstance(root.obj, Options) else Options()
    changes: dict[str, Any] = {}
    for name, _ in _COMMON:
        value = local.get(name)
        if value:
            changes[name] = str(value) if isinstance(value, BackendName) else value
    return replace(base, **changes)


def command(
    group: typer.Typer, name: str, **settings: Any
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``fn(opts, ...)`` as ``name`` in ``group``, with the global options added.

    Usage::

        @command(app, "status")
        def status(opts: Options, ids: list[str]) -> None: ...
    """

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(fn, eval_str=True)
        own = list(signature.parameters.values())[1:]

        @functools.wraps(fn)
        def wrapper(ctx: typer.Context, **kwargs: Any) -> None:
            local = {name: kwargs.pop(_PREFIX + name) for name, _ in _COMMON}
            fn(options_from(ctx, local), **kwargs)

        ctx_param = inspect.Parameter(
            "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
        )
        common = [
            inspect.Parameter(
                _PREFIX + opt_name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None if opt_name in _VALUED else False,
                annotation=annotation,
            )
            for opt_name, annotation in _COMMON
        ]
        params = [ctx_param, *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own)]
        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*params, *common], return_annotation=None
        )
        group.command(name, **settings)(wrapper)
        return fn

    return register


class CommandAfterOptions(TyperCommand):
    """A command whose last arguments are a command line of its own (``submit -- ls -l``).

    Without ``--`` the command's own options are read as aiodirac's; the ``No such option``
    error then says where ``--`` goes (``aiodirac submit -- ls -l``).

    Usage: ``@command(app, "submit", cls=CommandAfterOptions)``
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = list(args)  # the parser consumes the list it is given
        try:
            return super().parse_args(ctx, args)
        except Exception as exc:
            # click's NoSuchOption / BadOptionUsage (typer ships its own copy of click): both
            # name the option they stumbled on
            option = getattr(exc, "option_name", None)
            split = split_command(self.get_params(ctx), given)
            if isinstance(option, str) and split is not None and option in split[1]:
                ours, theirs = split
                suggestion = f"{ctx.command_path} {shlex.join([*ours, '--', *theirs])}"
                said = str(getattr(exc, "message", exc)).rstrip(".")
                exc.message = (  # type: ignore[attr-defined]
                    f"{said}. If {option} belongs to the command, put -- before the command: "
                    f"{suggestion}"
                )
            raise


def split_command(params: Iterable[Any], args: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """``args`` cut where the user's command starts: (aiodirac's options, the command).

    ``params`` are the command's click parameters. ``None`` when there is no command or ``--``
    is already there.

    Usage: ``split_command(cmd.params, ["-p", "n=1..3", "ls", "-l"])`` -> ``(["-p", "n=1..3"],
    ["ls", "-l"])``
    """
    takes_value: dict[str, bool] = {}
    for param in params:
        if getattr(param, "param_type_name", "") == "option":
            for name in (*param.opts, *param.secondary_opts):
                takes_value[name] = not param.is_flag and not param.count
    skip = False
    for i, word in enumerate(args):
        if skip:
            skip = False
        elif word == "--":
            return None
        elif word.startswith("-") and word != "-":
            skip = "=" not in word and takes_value.get(word, False)
        else:
            return list(args[:i]), list(args[i:])
    return None


# --------------------------------------------------------------------------- job IDs
_RANGE = re.compile(r"^(\d+)-(\d+)$")
#: A range wider than this is almost certainly a typo (``1-1000000000``).
MAX_RANGE = 1_000_000


def parse_ids(values: Iterable[str], *, stdin: Callable[[], str] | None = None) -> list[int]:
    """Job IDs from arguments: ``12``, ``12,13``, ``12-20`` (inclusive), or ``-`` for stdin.

    Duplicates are dropped, order is kept.

    Raises:
        UsageProblem: something that is not a job ID.

    Usage: ``parse_ids(["12-14", "20"])`` -> ``[12, 13, 14, 20]``
    """
    seen: dict[int, None] = {}
    for value in values:
        if value == "-":
            text = (stdin or sys.stdin.read)()
            words = text.replace(",", " ").split()
            seen.update(dict.fromkeys(parse_ids(words)))
            continue
        for word in value.replace(",", " ").split():
            match = _RANGE.match(word)
            if match:
                first, last = int(match[1]), int(match[2])
                if first <= 0 or last < first or last - first >= MAX_RANGE:
                    raise UsageProblem(f"{word!r} is not a valid range of job IDs")
                seen.update(dict.fromkeys(range(first, last + 1)))
            elif word.isdigit() and int(word) > 0:
                seen[int(word)] = None
            else:
                raise UsageProblem(f"{word!r} is not a job ID (expected e.g. 12, 12-20 or -)")
    return list(seen)


# --------------------------------------------------------------------------- running
def choose(opts: Options) -> BackendChoice:
    """The backend the options select (local, or DiracX with its URL).

    Usage: ``choose(opts).kind``
    """
    from aiodirac._config import choose_backend

    return choose_backend(opts.backend, url=opts.url)


#: Seconds an interactive one-shot command retries an unreachable service before giving up.
QUICK_DEADLINE = 20.0


def make_client(
    opts: Options,
    *,
    journal: str | None = None,
    poll_interval: float | None = None,
    quick: bool = False,
) -> AsyncDirac:
    """An :class:`~aiodirac.AsyncDirac` for these options (not yet opened).

    The local backend answers status queries in milliseconds, so it is polled more often than a
    shared DiracX service. ``quick`` commands (a status query, a kill) give up retrying an
    unreachable service after :data:`QUICK_DEADLINE` seconds instead of the library's two
    minutes: someone is waiting at the terminal.

    Usage: ``async with make_client(opts) as dirac: ...``
    """
    from aiodirac import AsyncDirac, RetryPolicy, TrackConfig
    from aiodirac._config import default_limits

    kind = choose(opts).kind
    if kind == "local":
        interval = 0.2 if poll_interval is None else poll_interval
        track = TrackConfig(min_interval=interval, max_interval=max(interval, 2.0))
    else:
        interval = 2.0 if poll_interval is None else poll_interval
        track = TrackConfig(min_interval=interval, max_interval=max(interval, 60.0))
    limits = default_limits(rate=opts.rate, max_in_flight=opts.max_in_flight)
    if quick:
        limits = replace(limits, retry=RetryPolicy(deadline=QUICK_DEADLINE))
    return AsyncDirac(
        kind,
        url=opts.url,
        journal=journal,
        track_config=track,
        limits=limits,
        verify=opts.ca_bundle,
    )


def _leaf(exc: BaseException) -> BaseException:
    """The exception that matters inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        from aiodirac import DiracError

        inner = list(exc.exceptions)
        preferred = [e for e in inner if isinstance(e, DiracError | BaseExceptionGroup)]
        exc = (preferred or inner)[0]
    return exc


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit status an error maps to (see :class:`ExitCode`).

    Usage: ``exit_code_for(JDLSyntaxError("..."))`` -> ``ExitCode.USAGE``
    """
    from aiodirac import (
        ConfigurationError,
        InvalidArgumentError,
        InvalidTransitionError,
        JDLSyntaxError,
        JobDescriptionError,
        JournalError,
        SubmissionError,
    )

    exc = _leaf(exc)
    if isinstance(exc, UsageProblem | typer.BadParameter):
        return ExitCode.USAGE
    usage = (
        JobDescriptionError,
        JDLSyntaxError,
        InvalidArgumentError,
        ConfigurationError,
        JournalError,
    )
    if isinstance(exc, usage):
        return ExitCode.USAGE
    if isinstance(exc, SubmissionError):
        return ExitCode.JOBS_FAILED if exc.submitted else ExitCode.SERVICE
    if isinstance(exc, InvalidTransitionError):
        return ExitCode.JOBS_FAILED
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.SERVICE


def one_line(text: str) -> str:
    """A message squeezed onto one line (errors are one line on stderr).

    Usage: ``one_line("a\\n  b")`` -> ``"a b"``
    """
    return " ".join(text.split())


def error_line(exc: BaseException) -> str:
    """The one line printed on stderr for an error.

    Usage: ``error_line(exc)`` -> ``"aiodirac: error: job 12: not found"``
    """
    from aiodirac import DiracError

    exc = _leaf(exc)
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED_LINE.strip()
    if isinstance(exc, DiracError | UsageProblem | typer.BadParameter | OSError):
        said = inert(one_line(error_text(exc)))
        return f"aiodirac: error: {said or 'failed (run again with --debug for details)'}"
    return (
        f"aiodirac: unexpected error: {type(exc).__name__}: {inert(one_line(str(exc)))} "
        "(run again with --debug for the traceback)"
    )


class _StderrHandler(logging.Handler):
    """Log lines on the stderr of the moment (test runners swap it between invocations)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = inert(self.format(record), lines=True)
            sys.stderr.write(f"aiodirac: {record.levelname.lower()}: {line}\n")
        except (OSError, ValueError):
            self.handleError(record)


def run(opts: Options, main: Callable[[], Awaitable[int | None]]) -> NoReturn:
    """Run a command's async body, then exit with its code; errors become one stderr line.

    ``main`` returns an :class:`ExitCode` (``None`` means OK). With ``--debug`` the traceback is
    printed before the line, and the library's debug logs are shown. Ctrl-C cancels the body
    (its cleanup runs), prints ``aiodirac: interrupted`` and exits with 130 (see ``_interrupt``).

    Usage: ``run(opts, lambda: body(opts))``
    """
    import anyio

    from ._interrupt import cancel_on_ctrl_c, handle_ctrl_c

    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("aiodirac")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if opts.debug else logging.WARNING)
    with handle_ctrl_c() as ctrl_c:
        try:
            code = anyio.run(cancel_on_ctrl_c, ctrl_c, main)
        except (typer.Exit, typer.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the CLI boundary: one line
            if ctrl_c.interrupted:  # whatever the cancelled body raised on its way out
                code = ExitCode.INTERRUPTED
            else:
                # A bug shows its traceback when asked; anything else is one line.
                if opts.debug:
                    sys.stderr.write(inert("".join(traceback.format_exception(exc)), lines=True))
                sys.stderr.write(error_line(exc) + "\n")
                raise typer.Exit(exit_code_for(exc)) from None
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
        if ctrl_c.interrupted:
            ctrl_c.report()
            raise typer.Exit(ExitCode.INTERRUPTED)
    raise typer.Exit(int(code or ExitCode.OK))


def usage_error(message: str) -> NoReturn:
    """Stop with a usage error (exit code 2) and one line on stderr.

    Usage: ``usage_error("give job IDs or --journal")``
    """
    sys.stderr.write(f"aiodirac: error: {inert(one_line(message))}\n")
    raise typer.Exit(ExitCode.USAGE)
