"""Run the UI tests several times in a row while other processes keep the CPU busy.

    .venv/bin/python -m tests.under_load [--runs 5] [--burners 2] [--burn-limit-s 3600] [PYTEST_ARGS...]

Why: the UI tests drive a real app whose worker threads compete for the CPU with everything else on
the machine. A test that waits for a fixed time, or gives up after a few seconds, passes alone and
fails in a busy full run. This makes the busy machine on purpose (``--burners`` processes that
spin on a core each) and reports, run by run, whether ``pytest -q tests/tui`` still passes.

The burners are bounded twice: each exits by itself after ``--burn-limit-s`` seconds, and all are
killed when the runs end (or the script is interrupted). Each run's full pytest output is kept in
``--log-dir``. The exit status is 0 only if every run passed.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A busy loop that stops itself after its time limit, even if this script is killed outright.
BURNER = (
    "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"
)


def start_burners(count: int, limit_s: float) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen([sys.executable, "-c", BURNER, str(limit_s)], stdout=subprocess.DEVNULL)
        for _ in range(count)
    ]


def stop_burners(burners: list[subprocess.Popen[bytes]]) -> None:
    for burner in burners:
        if burner.poll() is None:
            burner.kill()
    for burner in burners:
        burner.wait()


def run_once(index: int, pytest_args: list[str], log_dir: Path) -> tuple[bool, str]:
    """One ``pytest`` run of the UI tests; returns (passed, a one-line account of it)."""
    log = log_dir / f"run-{index}.log"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args]
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        code = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    seconds = time.monotonic() - started
    lines = log.read_text(encoding="utf-8").splitlines()
    summary = next(
        (line for line in reversed(lines) if " in " in line and ("passed" in line or "failed" in line)), ""
    )
    failures = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    account = f"run {index}: {'PASS' if code == 0 else 'FAIL'} ({seconds:.0f} s) {summary.strip('= ')}"
    if failures:
        account += "\n" + "\n".join(f"    {line}" for line in failures)
    return code == 0, account


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--burners", type=int, default=2, help="CPU-bound processes kept running meanwhile")
    parser.add_argument("--burn-limit-s", type=float, default=3600.0, help="each burner exits after this")
    parser.add_argument("--log-dir", type=Path, default=None, help="where each run's output goes")
    args, pytest_args = parser.parse_known_args(argv)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="specviz-under-load-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    pytest_args = pytest_args or ["tests/tui"]

    print(
        f"{args.runs} runs of pytest {' '.join(pytest_args)} beside {args.burners} burners; logs in {log_dir}"
    )
    # A plain `kill` must also stop the burners: turn SIGTERM into an exit that runs ``finally``.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    burners = start_burners(args.burners, args.burn_limit_s)
    results: list[bool] = []
    try:
        for index in range(1, args.runs + 1):
            passed, account = run_once(index, pytest_args, log_dir)
            results.append(passed)
            print(account, flush=True)
    finally:
        stop_burners(burners)
    print(f"{sum(results)}/{len(results)} runs passed")
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
