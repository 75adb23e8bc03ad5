"""Headless Chromium driven over the DevTools protocol on a pipe: no WebDriver, no Python
dependency. Used by the dashboard's browser tests and ``bench/dashboard.py``.

Chromium reads commands on fd 3 and writes replies on fd 4 (``--remote-debugging-pipe``),
each a JSON message ended by a NUL byte. The browser may reach only this machine: every host
name but localhost fails to resolve, and its background services (updates, sync, safe
browsing) are off.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

# Chromium's background services stay off; only loopback names resolve.
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--no-default-browser-check", "--disable-extensions",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-domain-reliability", "--no-pings",
    "--disable-client-side-phishing-detection", "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
    "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe",
)


def chromium_path() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page.

    Args:
        width, height: the viewport, in CSS pixels.
    """

    def __init__(self, width: int = 1280, height: int = 900) -> None:
        exe = chromium_path()
        if exe is None:
            raise BrowserError("chromium is not installed (apt-get install -y chromium)")
        self._profile = tempfile.mkdtemp(prefix="parzen-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds() -> None:  # in the child, before exec: the pipe ends become fds 3 and 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)  # either may be 3 or 4 now
            os.dup2(a, 3)  # dup2 makes them inheritable across exec
            os.dup2(b, 4)

        self._proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self._profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=fds, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.send("Target.attachToTarget",
                                   {"targetId": target, "flatten": True})["sessionId"]
        self.command("Page.enable")
        self.command("Runtime.enable")
        self.command("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": 1,
                      "mobile": False})

    # ---- protocol ---------------------------------------------------------------------------

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout_s: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def command(self, method: str, params: dict[str, Any] | None = None,
                timeout_s: float = 30.0) -> dict[str, Any]:
        """A command to the page."""
        return self.send(method, params, self._session, timeout_s)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError("chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise BrowserError("chromium exited")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    # ---- page -------------------------------------------------------------------------------

    def open(self, url: str) -> None:
        self.command("Page.navigate", {"url": url})

    def js(self, expression: str) -> Any:
        """The value of ``expression`` in the page (promises awaited)."""
        reply = self.command("Runtime.evaluate", {"expression": expression,
                                                  "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression}: {reply['exceptionDetails']}")
        return reply.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 15.0, every_s: float = 0.02) -> Any:
        """Poll ``expression`` until it is truthy; returns its value.

        Raises:
            BrowserError: still falsy after ``timeout_s`` (the page's text is in the message).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:  # an element is truthy (returned by value, it would be an empty object)
                value = self.js(f"(() => {{ const v = ({expression}); "
                                "return v instanceof Node ? true : v; })()")
            except BrowserError:
                value = None  # the page is still loading
            if value:
                return value
            if time.monotonic() > deadline:
                text = self.js("document.body ? document.body.innerText.slice(0, 800) : ''")
                raise BrowserError(f"timed out waiting for {expression!r}; the page shows:\n"
                                   f"{text}")
            time.sleep(every_s)

    def text(self, selector: str) -> str:
        value = self.js(f"(document.querySelector({json.dumps(selector)}) || {{}}).innerText "
                        "|| ''")
        return str(value)

    def screenshot(self, path: str) -> None:
        data = self.command("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout_s=5)
        except (BrowserError, OSError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
