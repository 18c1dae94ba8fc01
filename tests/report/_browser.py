"""A headless Chromium driven through the DevTools protocol on a pipe (no extra package).

Chromium started with ``--remote-debugging-pipe`` reads protocol commands on file descriptor 3
and writes answers and events on 4, each a JSON object followed by a NUL byte. This module opens
one page, records every console error, uncaught exception, browser log error (a refused request,
a Content-Security-Policy violation) and network request, and can evaluate JavaScript and take a
full-page screenshot. The browser is stopped by its PID when the ``with`` block ends.

Usage::

    with Browser.start(tmp_path) as browser:
        page = browser.open(path.as_uri())
        print(page.errors, page.evaluate("document.title"))
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Each chart of a report: its box on the page, how many drawn shapes (paths, uses) and texts.
CHARTS = """
[...document.querySelectorAll('svg.chart')].map(svg => {
  const box = svg.getBoundingClientRect();
  const shapes = [...svg.querySelectorAll('path, use')].filter(e => {
    const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length;
  return {name: svg.getAttribute('aria-label'), width: box.width, height: box.height,
          shapes: shapes, texts: [...svg.querySelectorAll('text')].map(t => t.textContent)};
})
"""
TIMEOUT = 60.0  # seconds for any one answer; a loaded 2-core machine starts Chromium in ~3 s
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",  # tests may run as root (CI containers), where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file (and a check that it is one)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def open_page(browser: Browser, path: Path) -> Page:
    """Open a local file and check it has loaded."""
    page = browser.open(path.as_uri())
    assert page.evaluate("document.readyState") == "complete"
    return page


def load_report(executable: str, workdir: Path, report: Path, shot: Path) -> dict[str, Any]:
    """Open ``report`` in a new Chromium, screenshot it to ``shot``; its charts by name.

    Fails unless the page loaded with no error and requested nothing but itself.
    """
    with Browser.start(workdir, executable) as browser:
        page = open_page(browser, report)
        charts = {chart["name"]: chart for chart in page.evaluate(CHARTS)}
        page.screenshot(shot)
        assert page.errors == []
        assert page.requests == [report.as_uri()]  # the page itself, nothing else
    return charts


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable on PATH, if any."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Page:
    """One page's session, and what it reported since it was opened."""

    browser: Browser
    session: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.call(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (JSON-compatible; a promise is awaited)."""
        answer = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise AssertionError(f"{expression!r} threw: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def screenshot(self, path: Path, width: int = 1100) -> Path:
        """A PNG of the whole page (not only the window) at ``width`` CSS pixels."""
        height = int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        height = int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            captureBeyondViewport=True,
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


class Browser:
    """A Chromium process and its protocol pipe."""

    def __init__(self, process: subprocess.Popen[bytes], send: int, receive: int) -> None:
        self.process = process
        self._send = send
        self._receive = receive
        self._buffer = b""
        self._next_id = 0
        self._pages: dict[str, Page] = {}

    @classmethod
    @contextmanager
    def start(cls, workdir: Path, executable: str | None = None) -> Iterator[Browser]:
        """Start a headless Chromium with its profile in ``workdir``; stop it afterwards."""
        binary = executable or find_chromium()
        if binary is None:
            raise FileNotFoundError("no Chromium on PATH")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def wire_pipes() -> None:
            # In the child, before exec: its pipe ends become descriptors 3 and 4 (copied away
            # first, in case either already sits on 3 or 4), made inheritable (a copy that
            # landed on 3 itself keeps its close-on-exec flag through dup2); every descriptor
            # Python opened is not inheritable (PEP 446), so exec keeps only these.
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        profile = workdir / "chromium-profile"
        profile.mkdir()
        # Chromium writes beside its profile too (crash-report settings in ~/.config/chromium,
        # dconf's cache in ~/.cache): a home of its own keeps all of it in workdir.
        home = workdir / "chromium-home"
        home.mkdir()
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local/share"),
        }
        with (workdir / "chromium.log").open("wb") as log:
            process = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
                close_fds=False,  # it would close 3 and 4 after wire_pipes ran
                preexec_fn=wire_pipes,  # noqa: PLW1509 - started from the test thread alone
                start_new_session=True,
            )
        os.close(to_browser_r)
        os.close(from_browser_w)
        browser = cls(process, to_browser_w, from_browser_r)
        try:
            yield browser
        finally:
            browser._stop()

    def _stop(self) -> None:
        try:
            if self.process.poll() is None:
                self._write({"id": -1, "method": "Browser.close"})
                self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):  # it may have just exited
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session: its helpers too
            self.process.wait()
        finally:
            os.close(self._send)
            os.close(self._receive)

    def _write(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._send, data) :]

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._receive], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._receive, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed its protocol pipe (it exited)")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send one command and return its result; events read meanwhile are recorded."""
        self._next_id += 1
        ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._write(message)
        deadline = time.monotonic() + TIMEOUT
        while True:
            answer = self._read(deadline)
            if answer.get("id") == ident:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self._record(answer)

    def wait_for(self, session: str, event: str) -> dict[str, Any]:
        """Read until the page sends ``event``; return its parameters."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._read(deadline)
            if message.get("method") == event and message.get("sessionId") == session:
                params: dict[str, Any] = message.get("params", {})
                return params
            self._record(message)

    def _record(self, message: dict[str, Any]) -> None:
        page = self._pages.get(message.get("sessionId", ""))
        if page is None:
            return
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            page.errors.append(f"exception: {details.get('exception', details)}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            page.errors.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            page.errors.append(f"log: {params['entry'].get('text')}")
        elif method == "Network.requestWillBeSent":
            page.requests.append(params["request"]["url"])

    def open(self, url: str) -> Page:
        """Open ``url`` in a new page and return once it has loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = self._pages[session] = Page(self, session)
        for domain in ("Runtime", "Log", "Page", "Network"):
            page.call(f"{domain}.enable")
        page.call("Page.navigate", url=url)
        self.wait_for(session, "Page.loadEventFired")
        # Anything the page logs while settling (a late CSP report) arrives before this answer.
        page.evaluate("new Promise(r => requestAnimationFrame(() => r(1)))")
        return page
