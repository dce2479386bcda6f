"""The container image can start every process: its distribution, built from exactly the files
the Dockerfile copies, imports every entry point and runs ``monitor --help``. No engine runs
containers here; this builds what the image's ``pip install .`` builds (the image could not start
the API or the scheduler: the Dockerfile copied no ``client/``, which they import)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]
ENTRY_POINTS = [
    "monitor.api.app",
    "monitor.scheduler",
    "monitor.services.alerting.delivery",
    "alerts.retry",
    "dashboards.cli",
    "dashboards.app",
    "monitor.demo",
]
# Only what the wheel holds: the editable install of this checkout (its finder and its paths) is
# taken away before anything is imported.
IMPORT_CHECK = """
import sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in (getattr(f, "__module__", "") or "")]
import os
checkout = {os.path.realpath(sys.argv[2]), os.path.realpath(os.path.join(sys.argv[2], "client"))}
sys.path = [sys.argv[1]] + [
    p for p in sys.path if p and os.path.realpath(p) not in checkout and "__editable__" not in p
]
import importlib
for name in sys.argv[3:]:
    module = importlib.import_module(name)
    assert module.__file__.startswith(sys.argv[1]), (name, module.__file__)
from dashboards.cli import main
try:
    main(["--help"])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
"""


def _copied(dockerfile: str) -> list[str]:
    """The sources of the Dockerfile's COPY lines before it installs."""
    out = []
    for line in dockerfile.splitlines():
        if line.startswith("RUN pip install"):
            break
        if line.startswith("COPY "):
            out += line.split()[1:-1]
    return out


def test_the_images_distribution_starts_every_process(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    for source in _copied((ROOT / "Dockerfile").read_text()):
        src = ROOT / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, context / source)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    assert (site / "monitor_client" / "__init__.py").exists()
    # what the packages read from their own folders at run time travels with them
    assert (site / "dashboards" / "assets" / "dashboard.css").read_text() == (
        ROOT / "dashboards" / "assets" / "dashboard.css"
    ).read_text()
    checked = subprocess.run(
        [sys.executable, "-I", "-c", IMPORT_CHECK, str(site), str(ROOT), *ENTRY_POINTS],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "usage: monitor" in checked.stdout
