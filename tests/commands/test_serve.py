"""`specviz serve`: the UI in a real browser, one specviz process per tab, and its mistakes caught first.

The browser test drives Debian's headless Chromium over the DevTools protocol
(tests/support/browser.py) and skips, saying why, where the machine has no Chromium. The rest need
no browser: the checks made before serving, the page addresses, and a tab's process seen through
a bare websocket.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from specviz.cli import main as cli_main
from specviz.commands import serve
from tests.support.browser import ROOT, Served, alive, find_chromium, launch, serving, until

TRACE = "tests/support/data/sampled.jsonl"  # 28 iterations of a sampled run: no model needed
DEADLINE_S = 60.0  # generous: a busy 2-core machine starts Chromium and a specviz process slowly


def _run(*argv: str) -> int:
    return cli_main(["serve", *argv])


@pytest.fixture(autouse=True)
def _never_serve_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that lets bad input through fails here at once instead of serving forever
    (servers these tests mean to start run in a subprocess, untouched by this)."""

    def refuse(child: serve.ChildCommand, listener: socket.socket, title: str) -> None:
        listener.close()
        raise AssertionError(f"served `{title}` although the input was to be refused")

    monkeypatch.setattr(serve, "_serve", refuse)


# --- the checks made before anything is served: one line, exit code 2 ---------------------------


def test_a_port_in_use_is_named_with_the_flag_that_changes_it(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert _run("--port", str(port), "--", "replay", TRACE) == 2
    err = capsys.readouterr().err
    assert f"port {port} is in use" in err and "--port" in err
    assert "Traceback" not in err


def test_a_host_that_does_not_resolve_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--host", "no-such-host.invalid", "--port", "0", "--", "replay", TRACE) == 2
    err = capsys.readouterr().err
    assert "--host 'no-such-host.invalid'" in err and "--host 127.0.0.1" in err


def test_an_address_of_another_machine_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of this machine.
    assert _run("--host", "192.0.2.1", "--port", "0", "--", "replay", TRACE) == 2
    assert "192.0.2.1 is not an address of this machine" in capsys.readouterr().err


def test_a_port_out_of_range_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        _run("--port", "70000")
    assert exit_.value.code == 2
    assert "70000 is not a port" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("child", "says"),
    [
        (["replay"], "not a specviz command: the following arguments are required: trace"),
        (["replay", "no-such-trace.jsonl"], "no trace file 'no-such-trace.jsonl'"),
        (["replay", TRACE, "--headless"], "drop it after `--`"),
        (["run", "--headl"], "drop it after `--`"),  # argparse takes abbreviations
        (["folow", "class.jsonl"], "invalid choice: 'folow'"),
        (["--help"], "ask for help or the version"),
        (["replay", "--hel"], "ask for help or the version"),
        (["theory"], "`specviz theory` has no UI to show in a browser"),
    ],
)
def test_the_command_each_tab_runs_is_checked_before_serving(
    child: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistake after `--` is one line at the teacher's prompt, not a blank page per student."""
    assert _run("--port", "0", "--", *child) == 2
    err = capsys.readouterr().err
    assert says in err, err
    assert err.count("\n") == 1, err


def test_without_textual_serve_the_error_says_how_to_install_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = serve.importlib.util.find_spec
    monkeypatch.setattr(
        serve.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "textual_serve" else real_find_spec(name, *a),
    )
    assert _run("--port", "0", "--", "replay", TRACE) == 2
    assert "pip install textual-serve" in capsys.readouterr().err


def test_the_child_command_is_quoted_so_a_file_name_is_never_run(tmp_path: Path) -> None:
    """textual-serve runs each tab's command through a shell: a hostile trace name stays one argument."""
    hostile = "x.jsonl; touch owned; echo"
    child = serve.ChildCommand(argv=["replay", "--headless", hostile], command="replay")
    done = subprocess.run(
        ["/bin/sh", "-c", child.shell], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert not (tmp_path / "owned").exists()
    assert done.returncode == 2 and hostile in done.stderr  # replay was given the whole name


def test_locality_and_the_printed_address() -> None:
    assert serve.is_local("127.0.0.1") and serve.is_local("localhost") and serve.is_local("::1")
    assert not serve.is_local("0.0.0.0")
    assert serve.page_url("0.0.0.0", 8000) == f"http://{socket.gethostname()}:8000"
    assert serve.page_url("::1", 8000) == "http://[::1]:8000"


def test_a_wildcard_host_warns_that_the_network_can_open_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warning is printed before serving; serving itself is stubbed out here."""
    served: list[str] = []

    def fake_serve(child: serve.ChildCommand, listener: socket.socket, title: str) -> None:
        listener.close()
        served.append(title)

    monkeypatch.setattr(serve, "_serve", fake_serve)
    assert _run("--host", "0.0.0.0", "--port", "0", "--", "replay", TRACE) == 0
    out, err = capsys.readouterr()
    assert served == [f"specviz replay {TRACE}"]
    assert "warning: anyone who can reach this machine" in err
    assert f"http://{socket.gethostname()}:" in out


# --- the page and the websocket, without a browser ------------------------------------------------


def test_the_page_sends_each_browser_to_the_address_it_used() -> None:
    """Served on 0.0.0.0, a student's page must not tell their browser to connect to 0.0.0.0 (itself):
    the websocket and scripts follow the Host the browser asked for (textual-serve issue 42)."""

    async def fetch() -> str:
        server = serve._server_class()("true", host="0.0.0.0", port=8000, title="specviz")
        async with TestClient(TestServer(await server._make_app())) as client:
            response = await client.get("/", headers={"Host": "teacher-box.local:8000"})
            assert response.status == 200
            return await response.text()

    page = asyncio.run(fetch())
    assert 'data-session-websocket-url="ws://teacher-box.local:8000/ws"' in page
    assert 'src="http://teacher-box.local:8000/static/js/textual.js"' in page
    assert "0.0.0.0" not in page


def test_each_websocket_gets_its_own_specviz_process_which_ends_with_it(tmp_path: Path) -> None:
    """The protocol a browser speaks, without a browser: the tab's specviz draws, then exits on close."""

    async def session() -> None:
        with serving(["replay", TRACE], log_dir=tmp_path, deadline_s=DEADLINE_S) as served:
            assert served.app_pids() == []
            ws_url = served.url.replace("http://", "ws://") + "/ws?width=120&height=36"
            async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
                await _first_screen(ws, served)
                (pid,) = served.app_pids()
                assert (
                    f"replay {TRACE}"
                    in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                )
            # The socket closed: the tab's process is told to quit and must go.
            await _until_no_app(served)

    asyncio.run(session())


def test_ctrl_c_closes_every_tab_and_its_process_quits(tmp_path: Path) -> None:
    """Ctrl+C with a tab open: the tab is told the server stopped (rather than left hanging until
    aiohttp gives up on it), the server exits 0, and the tab's specviz process quits."""

    async def session() -> None:
        with serving(["replay", TRACE], log_dir=tmp_path, deadline_s=DEADLINE_S) as served:
            ws_url = served.url.replace("http://", "ws://") + "/ws?width=100&height=30"
            async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
                await _first_screen(ws, served)
                (pid,) = served.app_pids()
                served.process.send_signal(signal.SIGINT)
                while (message := await ws.receive(timeout=DEADLINE_S)).type == aiohttp.WSMsgType.BINARY:
                    pass  # the app's last frames
                assert message.type == aiohttp.WSMsgType.CLOSE, message
                assert (message.data, message.extra) == (
                    aiohttp.WSCloseCode.GOING_AWAY,
                    "specviz serve stopped",
                )
            assert await asyncio.to_thread(served.process.wait, DEADLINE_S) == 0
            assert "specviz serve: stopped" in served.log()
            await until(lambda: not alive(pid), DEADLINE_S, "the tab's specviz process to quit")

    asyncio.run(session())


async def _first_screen(ws: aiohttp.ClientWebSocketResponse, served: Served) -> None:
    """Read the tab's output until the specviz UI has drawn its tab bar."""
    drawn = b""
    while b"Stream" not in drawn:
        message = await ws.receive(timeout=DEADLINE_S)
        assert message.type == aiohttp.WSMsgType.BINARY, (message, served.log())
        drawn += message.data


async def _until_no_app(served: Served) -> None:
    """Wait (polling the process table) until no tab's specviz process is left."""
    await until(lambda: not served.app_pids(), DEADLINE_S, "the tab's specviz process to exit")


# --- a real browser -------------------------------------------------------------------------------

CHROMIUM = find_chromium()


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine: the browser test of `specviz serve` did not run "
    "(apt-get install chromium, or set SPECVIZ_CHROMIUM to a Chrome)",
)
def test_the_ui_renders_in_a_real_browser_and_answers_keys(tmp_path: Path) -> None:
    assert CHROMIUM is not None

    async def drive() -> None:
        with serving(["replay", TRACE], log_dir=tmp_path, deadline_s=DEADLINE_S) as served:
            async with launch(CHROMIUM, deadline_s=DEADLINE_S) as browser:
                page = await browser.new_page()
                await page.open(served.url, (1200, 800))
                # The tab bar and the stats bar of the replayed run (its last iteration): the
                # specviz UI itself, drawn in the page by xterm.js.
                await page.wait_for_text("1 Stream", "2 Charts", "it 28/28", deadline_s=DEADLINE_S)
                assert len(served.app_pids()) == 1
                await page.press("left")  # step back: the student's private playhead
                await page.wait_for_text("it 27/28", deadline_s=DEADLINE_S)
                await page.press("2")
                screen = await page.wait_for_text("acceptance rate by iteration", deadline_s=DEADLINE_S)
                assert "it 27/28" in screen
                await page.screenshot(tmp_path / "charts.png")
                assert (tmp_path / "charts.png").stat().st_size > 10_000  # a drawn page, not blank
                assert page.errors == []
                await browser.close_page(page)
                await _until_no_app(served)  # closing the tab ends its process

    asyncio.run(drive())


def test_the_browser_driver_finds_no_chromium_when_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """The skip above depends on this being honest: a named browser that does not exist is None."""
    monkeypatch.setenv("SPECVIZ_CHROMIUM", str(ROOT / "no-such-browser"))
    assert find_chromium() is None


def test_the_module_imports_no_web_server_until_it_serves() -> None:
    """`specviz --help` and the other commands stay light: aiohttp and textual_serve load on serve."""
    code = (
        "import sys, specviz.cli, specviz.commands.serve as s; "
        "print(sorted(m for m in ('aiohttp', 'textual_serve') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
