"""How long the demo takes to tell on-call after its drift is injected: runs `monitor demo` (a
fresh embedded database, short history) and times, on its console, from the "[story] drift
injected" line to the first "[on-call] FIRING" line; prints the console's story lines too.

    .venv/bin/python benchmarks/demo_first_alert.py [--drift-after 60] [--timeout 300] [--runs 1]

The target: under 2 minutes."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_run(drift_after: float, timeout: float, history: int) -> tuple[float | None, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_DATABASE_URL"}  # the embedded database
    cmd = [
        sys.executable, "-m", "dashboards.cli", "demo", "--history-hours", str(history),
        "--drift-after", str(drift_after), "--port", str(free_port()), "--dashboard-port", str(free_port()),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    injected = fired = None
    story: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            now = time.monotonic()
            if "[story]" in line or "[on-call]" in line or "[retraining" in line or "replaying" in line:
                story.append(line.rstrip())
            if injected is None and "[story] drift injected" in line:
                injected = now
            if injected is not None and re.search(r"\[on-call\] FIRING", line):
                fired = now
                break
            if now > deadline:
                break
    finally:
        proc.terminate()
        proc.wait(30)
    return (fired - injected if injected is not None and fired is not None else None), story


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drift-after", type=float, default=60.0)
    ap.add_argument("--timeout", type=float, default=420.0, help="give up on a run after this many seconds")
    ap.add_argument("--history-hours", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    for i in range(args.runs):
        took, story = one_run(args.drift_after, args.timeout, args.history_hours)
        print("\n".join(story))
        print(f"run {i + 1}: drift injected to first alert printed: " + (f"{took:.0f} s" if took else "no alert"))


if __name__ == "__main__":
    main()
