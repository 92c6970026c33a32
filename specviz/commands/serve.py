"""``specviz serve``: the specviz UI in web browsers, through textual-serve (the Textual project's server).

Each browser tab that opens the page gets its own ``specviz ARGS`` process, which draws the same
terminal UI into the page. For a class that is ``specviz serve --host 0.0.0.0 -- follow class.jsonl``:
every student follows the teacher's recorded run with a private playhead, and loads no model.

Everything that can be checked is checked before the port opens (the address, the port, the
specviz arguments each tab will run), so a mistake is one line here rather than a blank page in
every student's browser. textual_serve (and aiohttp under it) is imported only when serving: the
CLI entry stays light.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib.util
import ipaddress
import json
import re
import shlex
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"
UI_COMMANDS = ("run", "replay", "follow")  # the specviz commands that open the terminal UI
DEFAULT_PORT = 8000
# textual-serve's web page and protocol are those of this version (the index page is re-made below).
TEXTUAL_SERVE = "textual-serve"

EPILOG = """\
examples:
  specviz serve -- replay run.jsonl                    a recorded run, on this machine only
  specviz serve --host 0.0.0.0 -- follow class.jsonl   a class: students follow the teacher's trace
  specviz serve                                        the live UI (each tab loads its own models)

exit codes: 0 stopped (Ctrl+C); 2 bad input (the message says what to do)"""


class ServeError(Exception):
    """A problem the user fixes on the command line; the message says how."""


@dataclass(frozen=True)
class ChildCommand:
    """The specviz invocation each browser tab runs, checked once here."""

    argv: list[str]  # after ``specviz``; empty = the live UI on the default models
    command: str  # the subcommand it runs (run, replay, follow, ...)

    @property
    def shell(self) -> str:
        # textual-serve starts each tab's process through a shell: every word is quoted, so a
        # trace called `a b; rm -rf ~.jsonl` is one argument, never a command; `exec` replaces the
        # shell, so a student costs one process, not two.
        return "exec " + shlex.join([sys.executable, "-m", "specviz.cli", *self.argv])

    @property
    def title(self) -> str:
        return shlex.join(["specviz", *self.argv])


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number; e.g. --port 8000") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535); e.g. --port 8000")
    return port


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve",
        help="serve the specviz UI to web browsers (textual-serve)",
        description="Serve the specviz UI to web browsers: each browser tab runs its own "
        "`specviz ARGS` process and sees its terminal UI in the page.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; 0.0.0.0: every "
        "network interface, e.g. for a class)",
    )
    p.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)"
    )
    p.add_argument(
        "child",
        nargs=argparse.REMAINDER,
        metavar="-- ARGS",
        help="the specviz invocation each tab runs, after `--` (default: none, the live UI on the "
        "default models; e.g. `-- follow class.jsonl`, `-- replay run.jsonl`)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        child = check_child(args.child)
        _check_textual_serve()
        listener = bind(args.host, args.port)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    port = listener.getsockname()[1]
    url = page_url(args.host, port)
    # flush: a script or test that started us reads the URL from a pipe (block-buffered otherwise).
    print(f"specviz serve: open {url} in a browser; each tab runs `{child.title}`", flush=True)
    if not is_local(args.host):
        print(
            f"warning: anyone who can reach this machine on port {port} can open the page "
            "(and start a specviz process); --host 127.0.0.1 keeps it to this machine",
            file=sys.stderr,
            flush=True,
        )
    if child.command == "run":
        print(
            "note: each tab loads its own models (7.3 GiB for the default pair); for a class, record "
            "with `specviz run --trace class.jsonl` and serve `-- follow class.jsonl`",
            flush=True,
        )
    print("Ctrl+C stops the server and every tab's process.", flush=True)
    _serve(child, listener, title=child.title)
    print("specviz serve: stopped", flush=True)
    return 0


def check_child(words: list[str]) -> ChildCommand:
    """The specviz arguments after ``--``, parsed by specviz's own parser before anything is served.

    Parsed in a subprocess: the command layer does not import the CLI module that dispatches to it
    (tests/test_layers.py), and this is exactly what each tab will run, minus the running."""
    argv = words[1:] if words[:1] == ["--"] else list(words)
    code = (
        "import json, sys\n"
        "from specviz.cli import build_parser\n"
        "argv = sys.argv[1:]\n"
        # cli.main's rule: no subcommand (nothing, or options first) means the live UI.
        "if not argv or argv[0].startswith('-'): argv = ['run', '--chat', *argv]\n"
        "try:\n"
        "    ns = build_parser().parse_args(argv)\n"
        "except SystemExit as exc:\n"
        "    if exc.code: raise\n"
        "    ns = None\n"  # --help or --version (or an abbreviation): printed, exit code 0
        "print(json.dumps(ns and {'command': ns.command, 'headless': getattr(ns, 'headless', False), "
        "'trace': str(getattr(ns, 'trace', None) or '')}))\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False, timeout=120
        )
    except subprocess.TimeoutExpired:
        raise ServeError(
            "checking the arguments after `--` took over 2 minutes; is the machine overloaded?"
        ) from None
    if done.returncode != 0:
        # argparse's own last line names the problem ("the following arguments are required: trace").
        reason = (done.stderr.strip().splitlines() or ["unreadable arguments"])[-1]
        reason = re.sub(r"^[\w .-]*: error: ", "", reason)
        raise ServeError(f"the arguments after `--` are not a specviz command: {reason}")
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    if parsed is None:
        raise ServeError("the arguments after `--` ask for help or the version: the page would show nothing")
    command = str(parsed["command"])
    if command not in UI_COMMANDS:
        raise ServeError(
            f"`specviz {command}` has no UI to show in a browser; serve one of: {', '.join(UI_COMMANDS)}"
        )
    if parsed["headless"]:
        raise ServeError("--headless prints to a terminal, not the browser: drop it after `--`")
    if command == "replay" and not Path(parsed["trace"]).is_file():
        raise ServeError(
            f"no trace file {parsed['trace']!r} (from `-- replay`); record one with `specviz run --trace FILE`"
        )
    return ChildCommand(argv=argv, command=command)


def _check_textual_serve() -> None:
    if importlib.util.find_spec("textual_serve") is None:
        raise ServeError(
            f"serving to browsers needs {TEXTUAL_SERVE}: {shlex.join([sys.executable, '-m', 'pip', 'install', TEXTUAL_SERVE])}"
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound here rather than by the server: a taken port or a wrong address is
    a one-line error before anything starts, and ``--port 0`` gets a free port we can print."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ServeError(
            f"cannot serve on --host {host!r} ({reason}); use an address of this machine: "
            "--host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every network interface)"
        ) from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    # Like aiohttp: a restarted server may take the port while old connections linger in
    # TIME_WAIT (this does not let two servers listen on one port).
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} is in use (another specviz serve?); choose another with --port, "
                f"e.g. --port {port + 1 if port < 65535 else 8000}, or --port 0 for any free port"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ServeError(
                f"{host} is not an address of this machine; use --host 127.0.0.1 (this machine "
                "only) or --host 0.0.0.0 (every network interface)"
            ) from None
        if exc.errno == errno.EACCES:
            raise ServeError(
                f"port {port} needs administrator rights here; use a port above 1023, e.g. --port 8000"
            ) from None
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    listener.set_inheritable(False)
    return listener


def is_local(host: str) -> bool:
    """Whether only this machine can reach ``host`` (a loopback address or name)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        return False
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def page_url(host: str, port: int) -> str:
    """The address to open. A wildcard host is printed as this machine's name: `0.0.0.0` is
    where the server listens, not an address another machine can open."""
    shown = socket.gethostname() if host in ("", "0.0.0.0", "::") else host
    if ":" in shown:  # an IPv6 literal
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _serve(child: ChildCommand, listener: socket.socket, title: str) -> None:
    """Run textual-serve on the bound socket until Ctrl+C or SIGTERM."""
    from aiohttp import web
    from aiohttp.web_runner import GracefulExit

    server = _server_class()(child.shell, title=title)
    server.initialize_logging()
    loop = asyncio.new_event_loop()

    def request_exit() -> None:
        raise GracefulExit()

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, request_exit)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals (Windows)
            pass
    try:
        # access_log=None: one line per request would bury the lines that matter in a room of 30.
        web.run_app(
            server._make_app(),
            sock=listener,
            handle_signals=False,
            loop=loop,
            print=None,
            access_log=None,
        )
    finally:
        listener.close()
        loop.close()


def _server_class() -> Any:
    """textual-serve's Server, with page addresses relative to how the browser reached it.

    textual-serve writes absolute script and websocket addresses built from --host into the page
    (Textualize/textual-serve issue 42): served on 0.0.0.0, a student's browser would be told to
    connect to ws://0.0.0.0:8000, i.e. to itself. Built from the request's Host header instead,
    every student gets the address they typed. Defined here so textual_serve is imported only
    when serving."""
    import aiohttp_jinja2
    from aiohttp import WSCloseCode, web
    from textual_serve.server import Server, to_int

    class SpecvizServer(Server):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._tabs: set[web.WebSocketResponse] = set()  # one websocket per open tab

        async def _process_messages(self, websocket: web.WebSocketResponse, app_service: Any) -> None:
            self._tabs.add(websocket)
            try:
                await super()._process_messages(websocket, app_service)
            finally:
                self._tabs.discard(websocket)

        async def on_shutdown(self, app: web.Application) -> None:
            """Ctrl+C closes every tab's websocket first: each session then ends as when its tab
            closes, telling its specviz process to quit. Left open, a tab held the server's exit
            for 20 s (measured, one tab), and cancelling the sessions instead still took 10 s."""
            await asyncio.gather(
                *(
                    tab.close(code=WSCloseCode.GOING_AWAY, message=b"specviz serve stopped")
                    for tab in list(self._tabs)
                ),
                return_exceptions=True,
            )

        @aiohttp_jinja2.template("app_index.html")  # type: ignore[misc]
        async def handle_index(self, request: web.Request) -> dict[str, Any]:
            router = request.app.router
            origin = f"{request.scheme}://{request.host}"
            websocket_scheme = "wss" if request.scheme == "https" else "ws"
            static = f"{origin}{router['static'].url_for(filename='/')}".rstrip("/") + "/"
            return {
                "font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": f"{websocket_scheme}://{request.host}{router['websocket'].url_for()}",
                "config": {"static": {"url": static}},
                "application": {"name": self.title},
            }

        async def on_startup(self, app: web.Application) -> None:
            """Quiet: main() has printed the address (textual-serve's banner names 0.0.0.0)."""

    return SpecvizServer
