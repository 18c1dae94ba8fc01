"""The typer application: global options and the command groups.

Command modules import the library only inside their command functions, so building this app
(for ``--help`` or completion) loads typer and the option declarations, nothing more.

Usage: ``build_app().main(["status", "12"], prog_name="aiodirac")``
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._common import (
    BackendOpt,
    CaBundleOpt,
    DebugOpt,
    JsonOpt,
    MaxInFlightOpt,
    Options,
    QuietOpt,
    RateOpt,
    UrlOpt,
)

__all__ = ["app", "build_app"]

HELP = """Run and follow DIRAC grid jobs: on this machine (local backend) or on a DiracX server.

\b
Examples:
  aiodirac submit --param n=1..100 --name 'scan-%n' -- /bin/echo hello '%(n)s'
  aiodirac watch 1-100
  aiodirac output 1-100 --dest out/
  aiodirac campaign run --journal scan.db --param n=1..1000 -- ./analyse.sh '%(n)s'

\b
Exit codes: 0 all done, 1 some jobs failed, 2 usage error, 3 service error.
"""


def _version(value: bool) -> None:
    if value:
        from aiodirac import __version__

        typer.echo(f"aiodirac {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="aiodirac",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    backend: BackendOpt = None,
    url: UrlOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
    quiet: QuietOpt = False,
    rate: RateOpt = None,
    max_in_flight: MaxInFlightOpt = None,
    ca_bundle: CaBundleOpt = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Global options, valid before or after the command name."""
    ctx.obj = Options(
        backend=None if backend is None else str(backend),
        url=url,
        json=json,
        debug=debug,
        quiet=quiet,
        rate=rate,
        max_in_flight=max_in_flight,
        ca_bundle=ca_bundle,
    )


def _register() -> None:
    from . import (
        _campaign_cmd,
        _control_cmd,
        _local_cmd,
        _monitor_cmd,
        _output_cmd,
        _status_cmd,
        _submit_cmd,
        _watch_cmd,
    )

    for module in (
        _submit_cmd,
        _status_cmd,
        _watch_cmd,
        _monitor_cmd,
        _output_cmd,
        _control_cmd,
        _campaign_cmd,
        _local_cmd,
    ):
        module.register(app)


_register()


def build_app() -> Any:
    """The click command behind the typer app (what ``main`` runs).

    Usage: ``build_app().main(args=["--help"], prog_name="aiodirac")``
    """
    return typer.main.get_command(app)
