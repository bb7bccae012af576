"""A real headless Chromium driven over the DevTools protocol on a pipe (stdlib only).

`--remote-debugging-pipe` makes Chromium read protocol messages (JSON, NUL-terminated) on fd 3
and write on fd 4, so tests can click, drag, read console errors and take screenshots without
a websocket library or a driver download. Debian's package is `chromium`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def find_chromium() -> str | None:
    """The first Chromium-like browser on PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless page; `errors` collects console errors and uncaught exceptions."""

    def __init__(self, width: int = 900, height: int = 600, timeout: float = 30.0) -> None:
        exe = find_chromium()
        if exe is None:
            raise RuntimeError("no chromium on PATH")
        self.timeout = timeout
        self.errors: list[str] = []
        self._events: list[dict] = []
        self._next_id = 0
        self._buf = b""
        self._profile = tempfile.mkdtemp(prefix="hgmamba-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds() -> None:  # in the child: fd 3 reads our commands, fd 4 writes replies
            r, w = os.dup(to_child_r), os.dup(from_child_w)  # above 4, so dup2 can't clobber
            os.dup2(r, 3)  # dup2 makes them inheritable
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--disable-background-networking", f"--user-data-dir={self._profile}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds, close_fds=False,
        )  # fmt: skip
        os.close(to_child_r)
        os.close(from_child_w)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width,
                  height=height, deviceScaleFactor=1, mobile=False)  # fmt: skip

    # ------------------------------------------------------------------ protocol
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def _note(self, msg: dict) -> None:
        """Keep events; record every console error and uncaught exception."""
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            self.errors.append(d.get("exception", {}).get("description") or d.get("text", ""))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in p["args"])
            )
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            self.errors.append(p["entry"].get("text", ""))
        self._events.append(msg)

    def call(self, method: str, session: bool = False, **params) -> dict:
        self._next_id += 1
        msg: dict = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._note(reply)

    def wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, ev in enumerate(self._events):
                if ev.get("method") == method:
                    return self._events.pop(i)
            self._note(self._read_message(deadline))

    # ------------------------------------------------------------------ page helpers
    def open(self, path: Path) -> None:
        self.call("Page.navigate", session=True, url=path.resolve().as_uri())
        self.wait_event("Page.loadEventFired")

    def eval(self, expression: str):
        res = self.call("Runtime.evaluate", session=True, expression=expression,
                        returnByValue=True, awaitPromise=True)  # fmt: skip
        if "exceptionDetails" in res:
            raise RuntimeError(res["exceptionDetails"].get("text", "evaluate failed"))
        return res["result"].get("value")

    def wait_for(self, expression: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.eval(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied {expression}")
            time.sleep(0.05)

    def mouse(self, kind: str, x: float, y: float, buttons: int = 1) -> None:
        self.call("Input.dispatchMouseEvent", session=True, type=kind, x=x, y=y,
                  button="left", buttons=buttons, clickCount=1)  # fmt: skip

    def drag(self, x0: float, y0: float, x1: float, y1: float, steps: int = 8) -> None:
        """Press, move in steps, release: what a person's mouse drag sends."""
        self.mouse("mousePressed", x0, y0)
        for k in range(1, steps + 1):
            t = k / steps
            self.mouse("mouseMoved", x0 + t * (x1 - x0), y0 + t * (y1 - y0))
        self.mouse("mouseReleased", x1, y1, buttons=0)

    def screenshot(self) -> np.ndarray:
        """The viewport as a BGR image."""
        png = base64.b64decode(
            self.call("Page.captureScreenshot", session=True, format="png")["data"]
        )
        return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
