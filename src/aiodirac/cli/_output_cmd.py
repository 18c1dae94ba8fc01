"""``aiodirac output``: download output sandboxes in parallel into ``<dest>/<job id>/``.

Usage: ``aiodirac output 12-40 --dest out/``
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import ExitCode, Options, command, make_client, run
from ._ids import IdsArg, JournalIdsOpt, check_journal, resolve_ids
from ._output import Output, error_text, human_bytes

if TYPE_CHECKING:
    from aiodirac._client import AsyncDirac
    from aiodirac._engine.download._downloader import DownloadProgress, DownloadResult

__all__ = ["download_with_progress", "job_error", "register", "report_downloads"]

DestOpt = Annotated[
    Path,
    typer.Option(
        "--dest", "-d", metavar="DIR", help="Folder that receives one sub-folder per job."
    ),
]
NoJobDirOpt = Annotated[
    bool,
    typer.Option(
        "--no-job-dir", help="Put every job's files straight into --dest (DIRAC's noJobDir)."
    ),
]
NoUnpackOpt = Annotated[
    bool, typer.Option("--no-unpack", help="Keep each sandbox as its archive, unopened.")
]


async def download_with_progress(
    dirac: AsyncDirac,
    ids: Iterable[int] | AsyncIterable[int],
    dest: Path,
    out: Output,
    *,
    total: int | None,
    no_job_dir: bool = False,
    unpack: bool = True,
) -> list[DownloadResult]:
    """Download with a progress bar of jobs, bytes, files and rate (on a terminal).

    Usage: ``results = await download_with_progress(dirac, ids, Path("out"), out, total=len(ids))``
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    with out.progress(
        TextColumn("[bold]Downloading"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("jobs  {task.fields[files]} files  {task.fields[size]}"),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("download", total=total, size="", files=0)

        def progress(p: DownloadProgress) -> None:
            bar.update(
                task,
                total=p.jobs_total,
                completed=p.jobs_done + p.jobs_failed,
                files=p.files_done,
                # local sandboxes are copied, not transferred: no bytes to show then
                size=f"{human_bytes(p.bytes_done)}  {human_bytes(p.rate)}/s"
                if p.bytes_done
                else "",
            )

        source: Any = ids if isinstance(ids, AsyncIterable) else list(ids)
        return await dirac.download(
            source, dest, no_job_dir=no_job_dir, unpack=unpack, progress=progress
        )


def job_error(result: DownloadResult) -> str | None:
    """Why a job's download failed, as the command line says it (``None`` when it did not).

    Usage: ``out.warn(job_error(result))``
    """
    if result.exception is None:
        return result.error
    text = error_text(result.exception)
    return text if f"job {result.job_id}" in text else f"job {result.job_id}: {text}"


def result_json(result: DownloadResult) -> dict[str, Any]:
    """One job's download outcome as JSON (stable keys).

    Usage: ``result_json(r)["ok"]``
    """
    return {
        "job_id": result.job_id,
        "ok": result.ok,
        "path": None if result.path is None else str(result.path),
        "files": [f.name for f in result.files],
        "bytes": result.bytes,
        "unpacked_bytes": result.unpacked_bytes,
        "skipped": result.skipped,
        "error": job_error(result),
    }


def report_downloads(out: Output, results: list[DownloadResult], dest: Path) -> int:
    """Print what was downloaded and what failed; return the exit code.

    Unknown jobs are reported as every command reports them (``job 12: not found``).

    Usage: ``return report_downloads(out, results, dest)``
    """
    from aiodirac import JobNotFoundError

    failed = [r for r in results if not r.ok]
    missing = [r.job_id for r in failed if isinstance(r.exception, JobNotFoundError)]
    if out.json:
        out.data(
            {
                "dest": str(dest),
                "downloaded": sum(1 for r in results if r.ok and not r.skipped),
                "skipped": sum(1 for r in results if r.skipped),
                "failed": len(failed),
                "missing": missing,
                "bytes": sum(r.bytes for r in results),
                "results": [result_json(r) for r in results],
            }
        )
    else:
        ok = [r for r in results if r.ok]
        skipped = sum(1 for r in ok if r.skipped)
        files = sum(len(r.files) for r in ok)
        extra = f" ({skipped} already there)" if skipped else ""
        out.result(f"Downloaded {len(ok)} of {len(results)} jobs into {dest}: {files} files{extra}")
        unknown = set(missing)
        for r in failed:
            if r.job_id not in unknown:
                out.warn(job_error(r) or f"job {r.job_id}: failed")
        out.missing(missing)
    return ExitCode.JOBS_FAILED if failed else ExitCode.OK


def register(app: typer.Typer) -> None:
    """Add ``output`` to the app."""

    @command(app, "output")
    def output(
        opts: Options,
        ids: IdsArg = None,
        journal: JournalIdsOpt = None,
        dest: DestOpt = Path("."),
        no_job_dir: NoJobDirOpt = False,
        no_unpack: NoUnpackOpt = False,
    ) -> None:
        """Download jobs' output sandboxes, many at once, into DEST/<job id>/.

        A job that is not finished or has no output is reported and the others still download.
        With --journal, jobs already downloaded intact are skipped.
        """
        out = Output(opts)

        async def body() -> int:
            async with make_client(opts, journal=check_journal(journal)) as dirac:
                wanted = await resolve_ids(dirac, ids, journal)
                results = await download_with_progress(
                    dirac,
                    wanted,
                    dest,
                    out,
                    total=len(wanted),
                    no_job_dir=no_job_dir,
                    unpack=not no_unpack,
                )
            return report_downloads(out, results, dest)

        run(opts, body)
