"""A real headless Chromium driven over the DevTools protocol, and a ``specviz serve`` to point it at.

Enough of a browser to test and photograph ``specviz serve``: open a page, read the text the
textual-serve terminal shows, press keys, take a PNG. It speaks the Chrome DevTools Protocol over a
websocket with aiohttp (which textual-serve already installs), so it needs nothing from pip and
downloads no browser: Debian's ``chromium`` (``apt-get install chromium``) or any Chrome on PATH;
``SPECVIZ_CHROMIUM`` names another.

Every process started here runs in its own process group and is killed with it on exit, also
when the caller fails: a test leaves no browser, server or specviz process behind.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# textual-serve's page keeps its xterm.js terminal in a closure, and draws it on a canvas (WebGL),
# so the page's DOM holds no text. This runs before the page's own scripts: the first object that
# gets a `terminal` property (textual.js's `this.terminal = new Terminal(...)`) hands it over, and
# the text is then read from xterm's public buffer API, exactly what the student sees.
CATCH_TERMINAL = """
(() => {
  window.__terminals = [];
  Object.defineProperty(Object.prototype, "terminal", {
    configurable: true,
    get() { return undefined; },
    set(value) {
      Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
      if (value && typeof value.write === "function") window.__terminals.push(value);
    },
  });
})();
"""

SCREEN_TEXT = """
(() => {
  const terminal = (window.__terminals || [])[0];
  if (!terminal) return null;
  const buffer = terminal.buffer.active;
  const lines = [];
  for (let y = 0; y < terminal.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    lines.push(line ? line.translateToString(true) : "");
  }
  return lines.join("\\n");
})()
"""

# Keys by the names Textual uses; a single printable character is itself.
_SPECIAL_KEYS = {
    "enter": ("Enter", "Enter", 13, "\r"),
    "escape": ("Escape", "Escape", 27, ""),
    "space": (" ", "Space", 32, " "),
    "right": ("ArrowRight", "ArrowRight", 39, ""),
    "left": ("ArrowLeft", "ArrowLeft", 37, ""),
    "up": ("ArrowUp", "ArrowUp", 38, ""),
    "down": ("ArrowDown", "ArrowDown", 40, ""),
    "home": ("Home", "Home", 36, ""),
    "end": ("End", "End", 35, ""),
    "tab": ("Tab", "Tab", 9, "\t"),
}


class BrowserError(Exception):
    """The browser or the server did not do what was asked within the deadline."""


def find_chromium() -> str | None:
    """The Chromium (or Chrome) to drive, or None when the machine has none."""
    named = os.environ.get("SPECVIZ_CHROMIUM")
    if named:
        return shutil.which(named) or (named if Path(named).is_file() else None)
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def _kill_group(process: subprocess.Popen[Any], grace_s: float = 10.0) -> None:
    """Stop ``process`` and everything it started (its process group): politely, then for sure."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    # Children may outlive a leader that exited: the group is killed whatever the leader did.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)


async def until(check: Callable[[], Any], deadline_s: float, what: str, interval_s: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; BrowserError naming ``what`` after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > end:
            raise BrowserError(f"gave up after {deadline_s:.0f} s waiting for {what}")
        await asyncio.sleep(interval_s)


@dataclass
class Served:
    """A running ``specviz serve``: its URL, its process and what it printed."""

    url: str
    process: subprocess.Popen[Any]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def app_pids(self) -> list[int]:
        """The specviz processes serving browser tabs: the server's descendants running specviz."""
        return [pid for pid in _descendants(self.process.pid) if "specviz.cli" in _cmdline(pid)]


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = _children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo += _children(child)
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` is running (a zombie nobody has reaped yet has finished)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@contextlib.contextmanager
def serving(
    child: Sequence[str], *, log_dir: Path, cwd: Path = ROOT, deadline_s: float = 60.0
) -> Iterator[Served]:
    """``specviz serve --port 0 -- CHILD`` on localhost, run in ``cwd``, until the block ends; yields
    its URL once printed."""
    log_path = log_dir / "serve.log"
    with log_path.open("wb") as log:  # a file, not a pipe: nobody has to keep reading it
        process = subprocess.Popen(
            [sys.executable, "-m", "specviz.cli", "serve", "--port", "0", "--", *child],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        end = time.monotonic() + deadline_s
        while not (
            found := re.search(r"open (http://\S+) in a browser", log_path.read_text(errors="replace"))
        ):
            if process.poll() is not None:
                raise BrowserError(f"specviz serve exited ({process.returncode}):\n{log_path.read_text()}")
            if time.monotonic() > end:
                raise BrowserError(
                    f"specviz serve printed no URL in {deadline_s:.0f} s:\n{log_path.read_text()}"
                )
            time.sleep(0.1)
        yield Served(found.group(1), process, log_path)
    finally:
        _kill_group(process)


@dataclass
class Page:
    """One browser tab, over its own DevTools websocket."""

    target_id: str
    socket: aiohttp.ClientWebSocketResponse
    errors: list[str] = field(default_factory=list)  # uncaught page exceptions, for failure messages
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _waiting: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data and (future := self._waiting.pop(data["id"], None)) and not future.done():
                future.set_result(data)
            elif data.get("method") == "Runtime.exceptionThrown":
                self.errors.append(str(data["params"]["exceptionDetails"].get("text")))
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(BrowserError("the browser closed the tab's connection"))

    async def call(self, method: str, timeout_s: float = 60.0, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result, or BrowserError with the browser's message."""
        call_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        await self.socket.send_json({"id": call_id, "method": method, "params": params})
        reply = await asyncio.wait_for(future, timeout_s)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return dict(reply.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    async def open(self, url: str, size: tuple[int, int]) -> None:
        """Go to ``url`` at a fixed viewport of ``size`` CSS pixels (1 device pixel each)."""
        await self.call("Runtime.enable")
        await self.call("Page.enable")
        await self.call("Page.addScriptToEvaluateOnNewDocument", source=CATCH_TERMINAL)
        width, height = size
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        # A headless tab is never the focused window; the terminal only takes keys when focused.
        await self.call("Emulation.setFocusEmulationEnabled", enabled=True)
        await self.call("Page.navigate", url=url)

    async def screen_text(self) -> str:
        """The text of the terminal on the page (empty until the app has drawn)."""
        return str(await self.evaluate(SCREEN_TEXT) or "")

    async def wait_for_text(self, *needles: str, deadline_s: float = 60.0) -> str:
        """The screen text once it holds every needle; BrowserError with the screen after the deadline."""
        last = ""

        async def shows() -> bool:
            nonlocal last
            last = await self.screen_text()
            return all(n in last for n in needles)

        try:
            await until(shows, deadline_s, f"{needles!r} on the page")
        except BrowserError as exc:
            raise BrowserError(f"{exc}; the page shows:\n{last}\npage errors: {self.errors}") from None
        return last

    async def wait_until_quiet(self, settle_s: float = 1.0, deadline_s: float = 60.0) -> str:
        """The screen text once it has stopped changing for ``settle_s``: an app still drawing is
        photographed half-drawn otherwise."""
        previous = await self.screen_text()
        steady_since = time.monotonic()
        end = time.monotonic() + deadline_s
        while time.monotonic() - steady_since < settle_s:
            if time.monotonic() > end:
                raise BrowserError(f"the page kept changing for {deadline_s:.0f} s")
            await asyncio.sleep(0.1)
            text = await self.screen_text()
            if text != previous:
                previous, steady_since = text, time.monotonic()
        return previous

    async def focus_terminal(self) -> None:
        await self.evaluate("window.__terminals[0].focus(), true")

    async def press(self, *keys: str) -> None:
        """Type keys into the terminal as a person would (keydown, the character, keyup)."""
        await self.focus_terminal()
        for key in keys:
            if key in _SPECIAL_KEYS:
                name, code, virtual, text = _SPECIAL_KEYS[key]
            elif len(key) == 1:
                name, code, virtual, text = key, "", ord(key.upper()), key
            else:
                raise ValueError(f"no key called {key!r}")
            down: dict[str, Any] = {"key": name, "windowsVirtualKeyCode": virtual}
            if code:
                down["code"] = code
            if text:
                down |= {"type": "keyDown", "text": text, "unmodifiedText": text}
            else:
                down["type"] = "rawKeyDown"
            await self.call("Input.dispatchKeyEvent", **down)
            await self.call(
                "Input.dispatchKeyEvent", **{**down, "type": "keyUp", "text": "", "unmodifiedText": ""}
            )

    async def screenshot(self, path: Path) -> Path:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        await self.socket.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


@dataclass
class Browser:
    """A headless Chromium: ``await browser.new_page()`` for each tab."""

    endpoint: str  # http://127.0.0.1:PORT, the DevTools HTTP endpoint
    process: subprocess.Popen[Any]
    http: aiohttp.ClientSession
    pages: list[Page] = field(default_factory=list)

    async def new_page(self) -> Page:
        async with self.http.put(f"{self.endpoint}/json/new?about:blank") as response:
            target = await response.json(content_type=None)
        socket = await self.http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        page = Page(target["id"], socket)
        page.start()
        self.pages.append(page)
        return page

    async def close_page(self, page: Page) -> None:
        await page.close()
        self.pages.remove(page)
        async with self.http.get(f"{self.endpoint}/json/close/{page.target_id}") as response:
            await response.read()


@contextlib.asynccontextmanager
async def launch(chromium: str, *, deadline_s: float = 60.0) -> AsyncIterator[Browser]:
    """A headless Chromium with a throwaway profile, killed (with every child) when the block ends."""
    with tempfile.TemporaryDirectory(prefix="specviz-chromium-") as profile:
        log_path = Path(profile) / "chromium.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    chromium,
                    "--headless=new",
                    "--remote-debugging-port=0",  # the browser picks a free port and writes it down
                    f"--user-data-dir={profile}",
                    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
                    "--disable-dev-shm-usage",  # containers have a small /dev/shm
                    # xterm.js draws with WebGL; with no GPU that is SwiftShader, in software.
                    "--enable-unsafe-swiftshader",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-extensions",
                    "--disable-sync",
                    "--hide-scrollbars",
                    "--mute-audio",
                    "about:blank",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            port_file = Path(profile) / "DevToolsActivePort"

            def port() -> str | None:
                if process.poll() is not None:
                    raise BrowserError(f"{chromium} exited ({process.returncode}):\n{log_path.read_text()}")
                lines = port_file.read_text().split() if port_file.is_file() else []
                return lines[0] if lines else None

            endpoint = f"http://127.0.0.1:{await until(port, deadline_s, 'Chromium to start')}"
            async with aiohttp.ClientSession() as http:
                browser = Browser(endpoint, process, http)
                try:
                    yield browser
                finally:
                    for page in list(browser.pages):
                        with contextlib.suppress(Exception):
                            await page.close()
        finally:
            _kill_group(process, grace_s=5.0)
