"""Open a page in headless Chromium as a person would, through the DevTools protocol over a pipe
(`--remote-debugging-pipe`: JSON messages ended by NUL on file descriptors 3 and 4), with no
dependency beyond the Debian `chromium` package: which images loaded, which script errors, console
errors and failed loads occurred, and a full-page screenshot."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--remote-debugging-pipe"]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium binary found (Debian: apt-get install -y --no-install-recommends chromium; "
                ".ci/run installs it)")


@dataclasses.dataclass
class PageCheck:
    images: list[dict]  # src, complete, width (naturalWidth), height
    exceptions: list[str]  # uncaught script errors
    console_errors: list[str]  # console.error and browser log errors
    failed_loads: list[str]  # network requests that failed
    title: str
    text: str  # document.body.innerText

    @property
    def broken_images(self) -> list[str]:
        return [i["src"] for i in self.images if not (i["complete"] and i["width"] > 0)]


class _Pipe:
    def __init__(self, binary: str, user_data_dir: str):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # The protocol reads fd 3 and writes fd 4: bash moves the pipe ends there and execs Chromium (dash
        # takes single-digit fds only; a preexec_fn would fork a process that runs JAX threads).
        wire = f'exec "$0" "$@" 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-'
        self.proc = subprocess.Popen(["bash", "-c", wire, binary, *FLAGS, f"--user-data-dir={user_data_dir}",
                                      "about:blank"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, pass_fds=(to_child_r, from_child_w))
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._receive(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe (exit code {self.proc.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass


IMAGES_JS = ("JSON.stringify({title: document.title, text: document.body ? document.body.innerText : '', "
             "images: Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete, "
             "width: i.naturalWidth, height: i.naturalHeight}))})")


def check_page(html_path: Path, screenshot: Path | None = None, width: int = 1280, height: int = 900,
               settle_s: float = 0.5) -> PageCheck:
    """Load `html_path` (file://), wait for its load event, and report what a person would have seen."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        browser = _Pipe(binary, profile)
        try:
            target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                browser.send(f"{domain}.enable", session=session)
            browser.send("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
            browser.send("Page.navigate", {"url": Path(html_path).resolve().as_uri()}, session=session)
            browser.wait_event("Page.loadEventFired")
            time.sleep(settle_s)  # late console messages and errors
            state = json.loads(browser.send("Runtime.evaluate", {"expression": IMAGES_JS, "returnByValue": True},
                                            session=session)["result"]["value"])
            if screenshot is not None:
                size = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
                shot = browser.send("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": min(size["height"], 16000), "scale": 1}},
                    session=session, timeout=60)
                Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        finally:
            browser.close()
    events = browser.events
    exceptions = [e["params"]["exceptionDetails"].get("exception", {}).get("description")
                  or e["params"]["exceptionDetails"].get("text", "")
                  for e in events if e.get("method") == "Runtime.exceptionThrown"]
    console = [" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"].get("args", []))
               for e in events if e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error"]
    console += [e["params"]["entry"].get("text", "") for e in events
                if e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"]
    failed = [f"{e['params'].get('errorText')} ({e['params'].get('requestId')})" for e in events
              if e.get("method") == "Network.loadingFailed"]
    return PageCheck(state["images"], exceptions, console, failed, state["title"], state["text"])
