"""A tiny headless-chromium driver for the HTML report tests.

Talks the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (the
browser reads NUL-terminated JSON commands on fd 3 and writes replies and
events on fd 4), so no websocket library and no network port are needed.

    with Chromium() as browser:
        page = browser.new_page(width=1280, height=900)
        page.navigate("file:///tmp/report.html")
        page.evaluate("document.title")
        page.screenshot("/tmp/shot.png")
        page.console_errors   # console.error/warn, uncaught exceptions, Log errors
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
    "--disable-extensions", "--mute-audio",
]


def _bash() -> str:
    path = shutil.which("bash")
    if path is None:
        raise FileNotFoundError("bash not found (it wires the browser's pipes to fds 3 and 4)")
    return path


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class CDPError(RuntimeError):
    pass


class Chromium:
    """One headless browser process with a fresh profile directory."""

    def __init__(self, executable: str | None = None, timeout: float = 30.0):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise FileNotFoundError("chromium not found")
        self.timeout = timeout
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self._closed = False
        self.proc = None

    # -- process -------------------------------------------------------------------------------
    def start(self) -> "Chromium":
        self.profile = tempfile.mkdtemp(prefix="gradcheck-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # the browser's ends go to fds 3 and 4 by bash's redirections in the child, not by a
        # preexec_fn: Python code between fork and exec can deadlock once other threads run
        # (JAX's, torch's), and subprocess warns about it.  Copies at fds >= 10 so that the
        # redirections to 3 and 4 cannot overwrite one another's source.
        src_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        src_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)
        to_browser_r, from_browser_w = src_r, src_w
        args = [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
                "about:blank"]
        wire = f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-'
        self.proc = subprocess.Popen([_bash(), "-c", wire, "chromium", *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     pass_fds=(to_browser_r, from_browser_w), start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._w = os.fdopen(to_browser_w, "wb", buffering=0)
        self._r = os.fdopen(from_browser_r, "rb", buffering=0)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self._stderr: list[bytes] = []
        threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr), daemon=True).start()
        self.send("Browser.getVersion")
        return self

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=5)
                except Exception:
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        finally:
            self._closed = True
            for f in (self._w, self._r):
                try:
                    f.close()
                except OSError:
                    pass
            shutil.rmtree(self.profile, ignore_errors=True)
            self.proc = None

    def __enter__(self) -> "Chromium":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- protocol ------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = self._r.read(65536)
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, session_id: str | None = None,
             timeout: float | None = None) -> dict:
        with self._cond:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session_id:
            msg["sessionId"] = session_id
        self._w.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CDPError(f"timeout waiting for {method}")
                if self._closed:
                    raise CDPError(f"browser closed while waiting for {method}: "
                                   + b"".join(self._stderr[-20:]).decode(errors="replace"))
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, session_id: str | None = None, timeout: float | None = None,
                   since: int = 0) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while True:
                for ev in self.events[since:]:
                    if ev.get("method") == method and (session_id is None or ev.get("sessionId") == session_id):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CDPError(f"timeout waiting for event {method}")
                self._cond.wait(left)

    def new_page(self, width: int = 1280, height: int = 900) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, sid)
        for domain in ("Runtime", "Log", "Page", "Network"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page


class Page:
    def __init__(self, browser: Chromium, session_id: str):
        self.browser = browser
        self.sid = session_id

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.sid)

    def _events(self, *methods: str) -> list[dict]:
        with self.browser._cond:
            return [e for e in self.browser.events if e.get("sessionId") == self.sid and e.get("method") in methods]

    def navigate(self, url: str, timeout: float = 30.0) -> float:
        """Load ``url`` and wait for the load event; return the seconds it took."""
        mark = len(self.browser.events)
        t0 = time.monotonic()
        reply = self.send("Page.navigate", {"url": url})
        if reply.get("errorText"):
            raise CDPError(f"navigation to {url} failed: {reply['errorText']}")
        self.browser.wait_event("Page.loadEventFired", self.sid, timeout, since=mark)
        return time.monotonic() - t0

    def evaluate(self, expression: str):
        """Value of a JavaScript expression (JSON-serialisable results only); page exceptions raise."""
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in reply:
            d = reply["exceptionDetails"]
            desc = (d.get("exception") or {}).get("description") or d.get("text")
            raise CDPError(f"JavaScript error in {expression[:80]!r}: {desc}")
        return reply["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (press + release) at the centre of the first element matching ``selector``."""
        # scroll, let two frames pass (rows with content-visibility get their real size), then make
        # sure the point really hits the element before clicking it
        box = self.evaluate(
            f"(function(){{var e=document.querySelector({json.dumps(selector)}); if(!e) return null;"
            "e.scrollIntoView({block:'center'});"
            "return new Promise(function(done){requestAnimationFrame(function(){requestAnimationFrame(function(){"
            "var r=e.getBoundingClientRect(), x=r.left+Math.min(r.width/2, 40), y=r.top+r.height/2;"
            "var hit=document.elementFromPoint(x, y);"
            "done([x, y, !!hit && (hit===e || e.contains(hit))]);});});});})()")
        if box is None:
            raise CDPError(f"no element matches {selector!r}")
        x, y, hits = box
        if not hits:
            raise CDPError(f"the element {selector!r} is covered at its click point")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def type_text(self, selector: str, text: str) -> None:
        """Focus ``selector`` and type ``text`` as key events (fires the page's input handlers)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: str, full_page: bool = False) -> str:
        params: dict = {"format": "png"}
        if full_page:
            m = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": m["width"], "height": m["height"], "scale": 1})
        data = self.send("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    @property
    def console_errors(self) -> list[str]:
        """console.error/warn calls, uncaught exceptions and error-level log entries of this page."""
        out = []
        for e in self._events("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded"):
            p = e["params"]
            if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append("console." + p["type"] + ": " + " ".join(str(a.get("value", a.get("description")))
                                                                     for a in p.get("args", [])))
            elif e["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + str((d.get("exception") or {}).get("description") or d.get("text")))
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                out.append("log: " + p["entry"].get("text", ""))
        return out

    @property
    def requests(self) -> list[str]:
        """URLs of every network request the page made (the document itself included)."""
        return [e["params"]["request"]["url"] for e in self._events("Network.requestWillBeSent")]


# -- report data for the tests ---------------------------------------------------------------------
def corpus_records(n: int) -> list[dict]:
    """``n`` real check records: the corpus's correct and buggy gradients, each checked once by
    ``check_gradient`` and reused under ``n`` distinct node ids (deterministic)."""
    from corpus import BUGS, CORRECT

    from pytest_gradcheck import check_gradient

    base = [(case, check_gradient(case.fun, case.params(), case.grad).to_dict()) for case in CORRECT + BUGS]
    records = []
    for i in range(n):
        case, res = base[i % len(base)]
        name = case.name.replace(":", "_")
        records.append({"nodeid": f"tests/test_models_{i % 17}.py::test_{name}[{i}]",
                        "label": "check" if i % 3 else f"check-{i % 5 + 2}",
                        "duration_s": 0.001 * (1 + (i * 7919) % 97), "result": json.loads(json.dumps(res))})
    return records
