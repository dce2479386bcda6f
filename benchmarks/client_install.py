"""How much a serving system installs to log to the monitor: a fresh virtual environment with
the client distribution (``pip install ./client``) against one with the whole server
(``pip install .``), side by side.

    .venv/bin/python benchmarks/client_install.py            # the client, and the server
    .venv/bin/python benchmarks/client_install.py --client-only

Sizes are of what pip added to the environment's site-packages (a bare venv's pip is left out);
the target for the client is under 30 MB."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def installed(spec: str) -> tuple[float, float, list[str]]:
    """MB added to a fresh venv's site-packages by ``pip install spec``, seconds, distributions."""
    with tempfile.TemporaryDirectory(prefix="monitor-install-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = venv / "bin" / "python"
        site = Path(
            subprocess.run(
                [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        before = _size(site)
        started = time.perf_counter()
        subprocess.run([str(py), "-m", "pip", "install", "-q", spec], check=True, cwd=ROOT)
        took = time.perf_counter() - started
        after = _size(site)
        listed = subprocess.run(
            [str(py), "-m", "pip", "list", "--format=freeze", "--exclude", "pip", "--exclude", "setuptools"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        return (after - before) / 1e6, took, listed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--client-only", action="store_true", help="skip installing the whole server")
    args = ap.parse_args()
    rows = [("client: pip install ./client", "./client")]
    if not args.client_only:
        rows.append(("server: pip install .", "."))
    print(f"{'what':34} {'MB added':>9} {'seconds':>8}  distributions")
    for label, spec in rows:
        mb, took, dists = installed(spec)
        shown = ", ".join(dists) if len(dists) <= 12 else f"{len(dists)} distributions"
        print(f"{label:34} {mb:9.1f} {took:8.1f}  {shown}")


if __name__ == "__main__":
    main()
