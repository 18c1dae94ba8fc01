"""Output sandbox download benchmark: aiodirac's engine against the alternatives, two paths.

1. Through a real DiracX + moto, by default DiracX as production runs it (MariaDB, uvicorn
   workers, nginx TLS; ``--server test`` for the one-process test app, ``--dx-env`` for a running
   one; see ``_server.py``): ``--jobs`` sandboxes of ``--size`` random bytes each, fetched by
   aiodirac (``Downloader`` with its defaults over ``DiracXBackend``), by the official client as its
   users call it (``jobs.get_job_sandbox`` then ``diracx.api.jobs.download_sandbox``, one job after
   another, in the DiracX venv), by a bare httpx loop (list, presigned URL, stream to a file, untar;
   16 in flight), at the server's ceiling for the same requests (list, presigned URL, stream to
   /dev/null, no untar; 16 in flight: 64 were slower on this server) and at the raw limit (the presigned URLs alone streamed to /dev/null,
   16 in flight: S3 without DiracX). The DiracX server's CPU (workers + MariaDB) per sandbox is
   printed beside each run, and moto's (S3).
2. Through nginx on loopback (installed with apt-get if missing, run as our own process with a
   private configuration): ``--files`` sandboxes of 1 MiB and one of ``--big`` bytes, aiodirac's
   engine against the raw limit (bare httpx streaming to /dev/null at the same concurrency), after
   one untimed warm-up run. The CPU used by nginx's workers during each run is shown (the server
   shares the machine's cores).

On both paths each client runs ``--repeat`` times (default 3), interleaved with the others, each
round starting with the next client; the median run is compared.

Every client runs in its own subprocess, so its CPU time (user + system, threads included, and
aiodirac's helper processes added in) and its peak RSS growth (peak minus the RSS just before the
download began; a helper process's whole peak RSS is shown beside it) are its own. Clients write
under ``--dest-root`` (default: a tmpfs folder, so that the engine is compared with the /dev/null
raw limit without the disk's speed in between; pass a disk folder to include it).

Usage::

    .venv/bin/python benchmarks/download.py                       # both paths, own DiracX
    .venv/bin/python benchmarks/download.py --skip-nginx --repeat 5
    .venv/bin/python benchmarks/download.py --skip-diracx --big 256MiB
    .venv/bin/python benchmarks/download.py --dx-env /tmp/dx/state/env.sh   # a running DiracX

Targets: DiracX path >= 3x the official client and >= 1.0x the bare httpx loop (issue 16);
nginx path >= 80% of the raw limit; peak RSS growth <= 64 MiB for the big sandbox (issue 7).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
from _server import (
    CpuSample,
    Server,
    add_server_arguments,
    children_cpu,
    running_server,
    stamp,
)

MiB = 1 << 20
CONCURRENCY = 16


def _size(text: str) -> int:
    units = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "": 1}
    for unit, factor in units.items():
        if unit and text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _tar_zst(files: dict[str, bytes]) -> bytes:
    import zstandard

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tf.addfile(info, io.BytesIO(data))
    return zstandard.ZstdCompressor(level=1).compress(buf.getvalue())


def _untar(path: Path, dest: Path) -> None:
    """Extract a tar or tar.zst archive (told apart by its first bytes) as a user would."""
    import zstandard

    with open(path, "rb") as raw:
        zstd = raw.read(4) == b"\x28\xb5\x2f\xfd"
        raw.seek(0)
        source: Any = zstandard.ZstdDecompressor().stream_reader(raw) if zstd else raw
        with tarfile.open(fileobj=source, mode="r|") as tf:
            tf.extractall(dest, filter="data")


# ============================================================================ children


# What a child's fn() reports beyond (bytes, files): aiodirac's transfers done in helpers.
_EXTRA: dict[str, int] = {}


def _measure(fn: Any) -> None:
    """Run ``fn()`` (returns (bytes, files)) and print its figures as one JSON line.

    Imports and set-up happen before (each child returns its ``fn`` ready to go). When aiodirac
    used a transfer helper process, the peak RSS of the largest child process is reported too
    (the helper's; otherwise only a short-lived tool such as ldconfig, run by an import).
    """
    base_rss = _rss_kib()
    before = resource.getrusage(resource.RUSAGE_SELF)
    kids_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    nbytes, nfiles = fn()
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF)
    # aiodirac's helper processes (DownloadConfig.processes) are waited for before fn() returns.
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu += (kids.ru_utime - kids_before.ru_utime) + (kids.ru_stime - kids_before.ru_stime)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "bytes": nbytes,
                "files": nfiles,
                "cpu": cpu,
                "rss_growth_mib": max(0, after.ru_maxrss - base_rss) / 1024,
                # the largest helper process's peak RSS (whole, not growth), 0 without helpers
                "helper_transfers": _EXTRA.get("helper_transfers", 0),
                "helper_rss_mib": kids.ru_maxrss / 1024 if _EXTRA.get("helper_transfers") else 0,
            }
        )
    )


def _child_aiodirac(spec: dict[str, Any]) -> Any:
    sys.path.insert(0, str(ROOT / "src"))
    import anyio

    from aiodirac._engine.download._downloader import DownloadConfig, Downloader

    verify = spec.get("verify", True)
    if spec["kind"] == "diracx":
        from aiodirac.backends.diracx import DiracXBackend

        backend: Any = DiracXBackend(
            spec["url"], credentials_path=spec["credentials"], verify=verify
        )
    else:
        backend = _static_backend(spec)

    async def main() -> tuple[int, int]:
        async with backend, Downloader(backend, DownloadConfig(verify=verify)) as dl:
            results = await dl.download(spec["ids"], spec["dest"])
            _EXTRA["helper_transfers"] = dl.helper_transfers
        failed = [r.error for r in results if not r.ok]
        if failed:
            raise SystemExit(f"aiodirac failed: {failed[:3]}")
        return sum(r.bytes for r in results), len(results)

    return lambda: anyio.run(main)


def _static_backend(spec: dict[str, Any]) -> Any:
    """Where the benchmark's nginx sandboxes are: all the downloader asks of a backend."""
    from aiodirac import OutputSandbox
    from aiodirac._resource import AsyncResource

    table = {int(k): v for k, v in spec["sandboxes"].items()}

    class StaticLocator(AsyncResource):
        async def output_sandbox(self, job_id: int) -> OutputSandbox:
            url, size, sha, fmt = table[job_id]
            return OutputSandbox(job_id=job_id, url=url, size=size, sha256=sha, format=fmt)

    return StaticLocator()


def _child_bare(spec: dict[str, Any], ceiling: bool = False) -> Any:
    """What a user writes with httpx: list, presign, stream to a file, untar; 16 in flight.

    With a static spec (nginx) the URLs and SHA-256 are known: the same work as the engine's,
    streamed to a file while hashed, checked, untarred, with no service to ask. As the server's
    ``ceiling``: the same requests, the bytes streamed to /dev/null, no untar.
    """
    import anyio
    import httpx

    static = spec["kind"] == "static"
    verify = spec.get("verify", True)
    token = "" if static else json.loads(Path(spec["credentials"]).read_text())["access_token"]
    dest = Path(spec["dest"])
    total = 0

    async def one(api: httpx.AsyncClient, s3: httpx.AsyncClient, job_id: int) -> None:
        nonlocal total
        sha = None
        if static:
            url, _, sha, _ = spec["sandboxes"][str(job_id)]
        else:
            pfns = (await api.get(f"/api/jobs/{job_id}/sandbox/output")).json()
            url = (await api.get("/api/jobs/sandbox", params={"pfn": pfns[-1]})).json()["url"]
        if ceiling:
            async with s3.stream("GET", url) as r:
                r.raise_for_status()
                async for chunk in r.aiter_raw():
                    total += len(chunk)
            return
        tmp = dest / f"{job_id}.archive"
        digest = hashlib.sha256()
        async with s3.stream("GET", url) as r:
            r.raise_for_status()
            with open(tmp, "wb") as f:
                async for chunk in r.aiter_bytes():
                    if sha:
                        digest.update(chunk)
                    f.write(chunk)
        if sha and digest.hexdigest() != sha:
            raise SystemExit(f"job {job_id}: SHA-256 mismatch")
        total += tmp.stat().st_size
        _untar(tmp, dest / str(job_id))
        tmp.unlink()

    async def main() -> tuple[int, int]:
        dest.mkdir(parents=True, exist_ok=True)
        limiter = anyio.CapacityLimiter(CONCURRENCY)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with (
            httpx.AsyncClient(
                base_url=spec.get("url", ""),
                headers=headers,
                timeout=60,
                verify=verify,
                limits=limits,
            ) as api,
            httpx.AsyncClient(timeout=60, verify=verify, limits=limits) as s3,
            anyio.create_task_group() as tg,
        ):

            async def limited(job_id: int) -> None:
                async with limiter:
                    await one(api, s3, job_id)

            for job_id in spec["ids"]:
                tg.start_soon(limited, job_id)
        return total, len(spec["ids"])

    return lambda: anyio.run(main)


def _child_raw(spec: dict[str, Any]) -> Any:
    """The raw limit: known URLs streamed to /dev/null, 16 in flight, one pooled client."""
    import anyio
    import httpx

    urls: list[str] = spec["urls"]
    total = 0

    async def main() -> tuple[int, int]:
        nonlocal total
        limiter = anyio.CapacityLimiter(CONCURRENCY)
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with (
            httpx.AsyncClient(timeout=60, limits=limits, verify=spec.get("verify", True)) as http,
            anyio.create_task_group() as tg,
        ):

            async def one(url: str) -> None:
                nonlocal total
                async with limiter, http.stream("GET", url) as r:
                    r.raise_for_status()
                    with open(os.devnull, "wb") as f:
                        async for chunk in r.aiter_raw():
                            f.write(chunk)
                            total += len(chunk)

            for url in urls:
                tg.start_soon(one, url)
        return total, len(urls)

    return lambda: anyio.run(main)


def _child_official(spec: dict[str, Any]) -> Any:
    """The official client as its users call it, one job after another."""
    import asyncio

    # Only in the DiracX venv (the child runs there).
    from diracx.api.jobs import download_sandbox  # type: ignore[import-not-found]
    from diracx.client.aio import AsyncDiracClient  # type: ignore[import-not-found]

    dest = Path(spec["dest"])

    async def main() -> tuple[int, int]:
        async with AsyncDiracClient() as client:
            for job_id in spec["ids"]:
                pfns = await client.jobs.get_job_sandbox(job_id, "output")
                folder = dest / str(job_id)
                folder.mkdir(parents=True)
                await download_sandbox(pfns[-1], folder, client=client)
        return spec["archive_bytes"], len(spec["ids"])

    return lambda: asyncio.run(main())


CHILDREN = {
    "aiodirac": _child_aiodirac,
    "bare": _child_bare,
    "ceiling": lambda spec: _child_bare(spec, ceiling=True),
    "raw": _child_raw,
    "official": _child_official,
}


# ============================================================================ parent


def run_child(
    mode: str, spec: dict[str, Any], work: Path, python: str = sys.executable
) -> dict[str, Any]:
    spec_file = work / f"spec-{mode}.json"
    spec_file.write_text(json.dumps(spec))
    env = dict(os.environ)
    env.update(spec.get("env", {}))
    out = subprocess.run(
        [python, str(HERE), "--child", mode, str(spec_file)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def show(label: str, m: dict[str, Any]) -> None:
    mbps = m["bytes"] / m["seconds"] / 1e6
    server = f"  server CPU {m['server_cpu']:5.2f} s" if "server_cpu" in m else ""
    helper = m.get("helper_rss_mib", 0)
    helpers = (
        f"  helper process: {m['helper_transfers']} transfers, peak RSS {helper:5.1f} MiB"
        if helper
        else ""
    )
    print(
        f"  {label:<34} {mbps:8.1f} MB/s {m['files'] / m['seconds']:8.1f} files/s "
        f"{m['seconds']:7.2f} s  CPU {m['cpu']:6.2f} s  peak RSS +{m['rss_growth_mib']:6.1f} MiB"
        f"{server}{helpers}",
        flush=True,
    )
    m["mbps"] = mbps


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput (its own figures, RSS included: the worst is shown)."""
    ordered = sorted(runs, key=lambda m: m["mbps"])
    median = dict(ordered[len(ordered) // 2])
    median["rss_growth_mib"] = max(m["rss_growth_mib"] for m in runs)
    median["helper_rss_mib"] = max(m.get("helper_rss_mib", 0) for m in runs)
    return median


def make_dx_jobs(server: Server, n: int, size: int) -> tuple[list[int], int, list[str]]:
    """Submit ``n`` jobs, give each an output sandbox of ``size`` random bytes, set them Done."""
    import httpx

    url = server.url
    token = json.loads(Path(server.credentials).read_text())["access_token"]
    api = httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
        verify=server.verify,
    )
    s3 = httpx.Client(timeout=120, verify=server.verify)
    jdl = (
        'Executable = "/bin/echo"; Arguments = "bench"; JobName = "dl-bench"; '
        'StdOutput = "std.out"; OutputSandbox = {"std.out", "data.bin"};'
    )
    ids: list[int] = []
    while len(ids) < n:
        batch = min(20, n - len(ids))
        r = api.post("/api/jobs/jdl", json=[jdl] * batch)
        r.raise_for_status()
        ids += [int(j["JobID"]) for j in r.json()]
    t = datetime.now(UTC)

    def at(ms: int) -> str:
        return (t + timedelta(milliseconds=ms)).isoformat()

    steps = ["Checking", "Waiting", "Matched", "Running"]
    body = {
        str(j): {at(i + 1): {"Status": s, "Source": "bench"} for i, s in enumerate(steps)}
        for j in ids
    }
    api.patch("/api/jobs/status", json=body).raise_for_status()
    rng = random.Random(7)
    total = 0
    urls: list[str] = []
    for j in ids:
        blob = _tar_zst({"std.out": f"job {j}\n".encode(), "data.bin": rng.randbytes(size)})
        total += len(blob)
        info = {
            "checksum_algorithm": "sha256",
            "checksum": hashlib.sha256(blob).hexdigest(),
            "size": len(blob),
            "format": "tar.zst",
        }
        up = api.post("/api/jobs/sandbox", json=info)
        up.raise_for_status()
        answer = up.json()
        if answer["url"]:
            s3.post(
                answer["url"], data=answer["fields"], files={"file": ("file", blob)}
            ).raise_for_status()
        api.patch(f"/api/jobs/{j}/sandbox/output", json=answer["pfn"]).raise_for_status()
        urls.append(api.get("/api/jobs/sandbox", params={"pfn": answer["pfn"]}).json()["url"])
    done = {
        str(j): {at(10): {"Status": "Done", "MinorStatus": "Execution Complete", "Source": "bench"}}
        for j in ids
    }
    api.patch("/api/jobs/status", json=done).raise_for_status()
    return ids, total, urls


def bench_diracx(args: argparse.Namespace, work: Path) -> dict[str, dict[str, Any]]:
    with running_server(args, work / "dx") as server:
        print(
            f"\n[1] DiracX ({server.description}): {args.jobs} sandboxes of {args.size} B",
            flush=True,
        )
        ids, total, urls = make_dx_jobs(server, args.jobs, args.size)
        print(f"  started {stamp()}")
        client_env = server.client_env()
        common = {
            "kind": "diracx",
            "ids": ids,
            "url": server.url,
            "credentials": server.credentials,
            "verify": server.verify,
            "archive_bytes": total,
            "env": {
                k: client_env[k]
                for k in ("DIRACX_URL", "DIRACX_CREDENTIALS_PATH", "SSL_CERT_FILE")
                if k in client_env
            },
        }
        runs = [
            ("aiodirac", "aiodirac (defaults)", sys.executable),
            ("official", "official client (one by one)", server.python),
            ("bare", f"bare httpx loop ({CONCURRENCY} in flight)", sys.executable),
            ("ceiling", f"server ceiling (/dev/null, {CONCURRENCY} in flight)", sys.executable),
            ("raw", f"S3 alone (/dev/null, {CONCURRENCY} in flight)", sys.executable),
        ]
        measured: dict[str, list[dict[str, Any]]] = {mode: [] for mode, _, _ in runs}
        # Rounds as on the nginx path: interleaved, each starting with the next client.
        for round_no in range(args.repeat):
            shift = round_no % len(runs)
            for mode, label, python in runs[shift:] + runs[:shift]:
                dest = (args.dest_root or work) / f"dx-{mode}"
                shutil.rmtree(dest, ignore_errors=True)
                spec = {**common, "dest": str(dest), "urls": urls}
                before = server.cpu()
                m = run_child(mode, spec, work, python)
                used: CpuSample = server.cpu() - before
                m["server_cpu"] = used.total
                measured[mode].append(m)
                show(label, m)
                print(f"      server CPU: {used.per_job(len(ids), 'sandbox')}", flush=True)
                if mode not in ("raw", "ceiling"):
                    got = sum(1 for p in dest.glob("*/data.bin") if p.stat().st_size == args.size)
                    if got != len(ids):
                        raise SystemExit(f"{mode}: only {got} of {len(ids)} sandboxes unpacked")
                shutil.rmtree(dest, ignore_errors=True)
        print(f"  ended {stamp()}")
        figures = {mode: _median_run(mode_runs) for mode, mode_runs in measured.items()}
        print(
            "  medians (range): "
            + ", ".join(
                f"{mode} {figures[mode]['mbps']:.1f} MB/s "
                f"({min(m['mbps'] for m in runs_):.1f}-{max(m['mbps'] for m in runs_):.1f})"
                for mode, runs_ in measured.items()
            ),
            flush=True,
        )
        return figures


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found:
        return found
    print("nginx missing: apt-get install -y nginx", flush=True)
    subprocess.run(["apt-get", "install", "-y", "nginx"], check=True, capture_output=True)
    return shutil.which("nginx") or "/usr/sbin/nginx"


def _write_big_tar(path: Path, size: int) -> None:
    info = tarfile.TarInfo("big.bin")
    info.size = size
    info.mtime = int(time.time())
    with open(path, "wb") as f:
        f.write(info.tobuf(format=tarfile.PAX_FORMAT))
        left = size
        while left:
            n = min(left, 8 * MiB)
            f.write(os.urandom(n))
            left -= n
        pad = (-size) % 512
        f.write(b"\0" * (pad + 1024))


def start_nginx(binary: str, work: Path, www: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    prefix = work / "nginx"
    prefix.mkdir(exist_ok=True)
    (prefix / "logs").mkdir(exist_ok=True)
    temps = "\n".join(
        f"  {k}_temp_path {prefix}/{k}_temp;"
        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = f"""
worker_processes 2;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  default_type application/octet-stream;
{temps}
  server {{
    listen 127.0.0.1:{port};
    root {www};
    location / {{ }}
  }}
}}
"""
    (prefix / "nginx.conf").write_text(conf)
    proc = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")])
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("nginx did not start")


def bench_nginx(args: argparse.Namespace, work: Path) -> dict[str, dict[str, Any]]:
    binary = ensure_nginx()
    www = work / "www"
    www.mkdir(parents=True, exist_ok=True)
    rng = random.Random(11)
    small: dict[int, tuple[str, int, str, str]] = {}
    print(
        f"\n[2] nginx on loopback: {args.files} sandboxes of 1 MiB and one of {args.big} B",
        flush=True,
    )
    for j in range(1, args.files + 1):
        path = www / f"{j}.tar.zst"
        if not path.exists():
            path.write_bytes(_tar_zst({"std.out": b"ok\n", "data.bin": rng.randbytes(MiB)}))
    big = www / f"big-{args.big}.tar"
    if not big.exists():
        _write_big_tar(big, args.big)
    proc, port = start_nginx(binary, work, www)
    figures: dict[str, dict[str, Any]] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        for j in range(1, args.files + 1):
            data = (www / f"{j}.tar.zst").read_bytes()
            small[j] = (
                f"{base}/{j}.tar.zst",
                len(data),
                hashlib.sha256(data).hexdigest(),
                "tar.zst",
            )
        big_sha = hashlib.sha256()
        with open(big, "rb") as f:
            while chunk := f.read(8 * MiB):
                big_sha.update(chunk)
        big_entry = {1: (f"{base}/{big.name}", big.stat().st_size, big_sha.hexdigest(), "tar")}
        for label, table in ((f"1 MiB x {args.files}", small), (f"1 x {args.big}", big_entry)):
            urls = [v[0] for v in table.values()]
            size = "small" if table is small else "big"
            runs: dict[str, list[dict[str, Any]]] = {"aiodirac": [], "bare": [], "raw": []}
            # Interleaved, so that the clients see the same background load, and each round
            # starts with the next client (the first run after a change of case is often the
            # slowest, whoever makes it); medians are kept.
            # One untimed raw run first (a warm-up, for every client alike): without it, the
            # first timed run of the 1 GiB case (always aiodirac's) came out at 57% of the raw
            # limit in three runs of this benchmark, the later ones at 77-94%. With it, no run
            # fell below 84% in the next run, but the first was at 59% in the one after: that
            # case also varies with the machine's state.
            warm = {"kind": "static", "ids": list(table), "urls": urls, "dest": str(work)}
            run_child("raw", {**warm, "sandboxes": {str(k): v for k, v in table.items()}}, work)
            for round_no in range(args.repeat):
                modes = list(runs.items())
                shift = round_no % len(modes)
                for mode, mode_runs in modes[shift:] + modes[:shift]:
                    dest = (args.dest_root or work) / f"ng-{mode}"
                    shutil.rmtree(dest, ignore_errors=True)
                    spec = {
                        "kind": "static",
                        "ids": list(table),
                        "sandboxes": {str(k): v for k, v in table.items()},
                        "dest": str(dest),
                        "urls": urls,
                    }
                    nginx_cpu = children_cpu(proc.pid)
                    m = run_child(mode, spec, work)
                    m["server_cpu"] = children_cpu(proc.pid) - nginx_cpu
                    mode_runs.append(m)
                    name = {
                        "aiodirac": "aiodirac engine",
                        "bare": f"same work, bare loop ({CONCURRENCY})",
                        "raw": f"raw limit (/dev/null, {CONCURRENCY})",
                    }[mode]
                    show(f"{label:<14} {name}", m)
                    shutil.rmtree(dest, ignore_errors=True)
            for mode, mode_runs in runs.items():
                figures[f"{mode}-{size}"] = _median_run(mode_runs)
            if args.repeat > 1:
                for other in ("raw", "bare"):
                    ratios = sorted(
                        a["mbps"] / r["mbps"]
                        for a, r in zip(runs["aiodirac"], runs[other], strict=True)
                    )
                    print(
                        f"  {label:<14} aiodirac / {other} per run: "
                        f"{', '.join(f'{x:.0%}' for x in ratios)}"
                    )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SPEC"), help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--size", type=_size, default=MiB)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--big", type=_size, default=1 << 30)
    parser.add_argument("--work", type=Path, default=Path("/tmp/aiodirac-download-bench"))
    parser.add_argument(
        "--dest-root",
        type=Path,
        default=Path("/dev/shm/aiodirac-download-bench") if Path("/dev/shm").is_dir() else None,
        help="where clients write (default: tmpfs, so the raw /dev/null limit and the engine "
        "are compared without the disk; give a disk folder to include it)",
    )
    add_server_arguments(parser)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each client, interleaved; the verdicts use the median run",
    )
    parser.add_argument("--skip-diracx", action="store_true")
    parser.add_argument("--skip-nginx", action="store_true")
    args = parser.parse_args()
    if args.child:
        mode, spec_file = args.child
        spec = json.loads(Path(spec_file).read_text())
        _measure(CHILDREN[mode](spec))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    verdicts: list[tuple[str, bool]] = []
    if not args.skip_diracx:
        dx = bench_diracx(args, args.work)
        ours, official, bare = dx["aiodirac"]["mbps"], dx["official"]["mbps"], dx["bare"]["mbps"]
        verdicts.append(
            (f"DiracX: aiodirac / official = {ours / official:.2f}x (>= 3x)", ours >= 3 * official)
        )
        verdicts.append(
            (f"DiracX: aiodirac / bare httpx = {ours / bare:.2f}x (>= 1.0x)", ours >= bare)
        )
        ceiling = dx["ceiling"]["mbps"]
        print(
            f"  DiracX: the server's ceiling for these requests {ceiling:.1f} MB/s; aiodirac / "
            f"ceiling = {ours / ceiling:.2f}, official / ceiling = {official / ceiling:.2f}"
        )
    if not args.skip_nginx:
        ng = bench_nginx(args, args.work)
        for size in ("small", "big"):
            ratio = ng[f"aiodirac-{size}"]["mbps"] / ng[f"raw-{size}"]["mbps"]
            verdicts.append((f"nginx {size}: aiodirac / raw = {ratio:.0%} (>= 80%)", ratio >= 0.8))
            same = ng[f"aiodirac-{size}"]["mbps"] / ng[f"bare-{size}"]["mbps"]
            print(f"  nginx {size}: aiodirac / a bare loop doing the same work = {same:.2f}x")
        growth = ng["aiodirac-big"]["rss_growth_mib"]
        verdicts.append((f"nginx big: peak RSS growth {growth:.1f} MiB (<= 64 MiB)", growth <= 64))
    print()
    for text, ok in verdicts:
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")


if __name__ == "__main__":
    main()
