"""The layering the README states, checked on the source: imports point one way (dashboards →
monitor → alerts), the pure packages do no I/O, and transactions commit only in the services."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IO = {"socket", "httpx", "sqlalchemy", "psycopg", "urllib.request", "requests", "http.client", "pgserver"}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _under(name: str, roots: set[str]) -> bool:
    return any(name == r or name.startswith(r + ".") for r in roots)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("alerts", {"monitor", "dashboards", *IO}),  # pure: the rules engine and the notification pipeline
        ("monitor/metrics", {"monitor.db", "monitor.services", "monitor.api", "dashboards", *IO}),
        # the innermost: what users declare and send, validated; the maths builds on it, not back
        ("monitor/domain", {"monitor.metrics", "monitor.db", "monitor.services", "monitor.api", "dashboards", *IO}),
        # routes reach the database only through the services
        ("monitor/api", {"monitor.db", "dashboards"}),
        ("monitor", {"dashboards"}),
    ],
)
def test_imports_point_one_way(package: str, forbidden: set[str]) -> None:
    wrong = {
        f"{p.relative_to(ROOT)}: {name}" for p in _modules(package) for name in _imports(p) if _under(name, forbidden)
    }
    assert not wrong, sorted(wrong)


# The service layer's rooms, each using only the rooms listed (and itself): what is monitored
# (catalog) and the context (infra) below everything; the scheduler's jobs on them; ingestion
# summarising as the jobs do; alerting reads only the catalog; read models read everything they
# show. ``monitor/services/bootstrap.py``, the composition root, may use every room.
SERVICE_ROOMS = {
    "infra": set(),
    "catalog": {"infra"},
    "jobs": {"catalog", "infra"},
    "ingest": {"jobs", "catalog", "infra"},
    "alerting": {"catalog", "infra"},
    "read_models": {"alerting", "jobs", "catalog", "infra"},
}


@pytest.mark.parametrize("room", sorted(SERVICE_ROOMS))
def test_service_rooms_point_one_way(room: str) -> None:
    allowed = {f"monitor.services.{r}" for r in {room, *SERVICE_ROOMS[room]}}
    wrong = {
        f"{p.relative_to(ROOT)}: {name}"
        for p in _modules(f"monitor/services/{room}")
        for name in _imports(p)
        if _under(name, {"monitor.services"}) and not _under(name, allowed)
    }
    assert not wrong, sorted(wrong)


def test_every_service_lives_in_a_room() -> None:
    services = ROOT / "monitor" / "services"
    loose = {p.name for p in services.glob("*.py")} - {"__init__.py", "bootstrap.py"}
    rooms = {p.name for p in services.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert not loose and rooms == set(SERVICE_ROOMS), (loose, rooms)


def test_the_errors_module_stands_alone() -> None:
    """``monitor.errors`` is imported by every layer, the domain among them: it imports none."""
    imports = {name for name in _imports(ROOT / "monitor" / "errors.py") if _under(name, {"monitor", "alerts"})}
    assert not imports, imports


def _calls(path: Path, attribute: str) -> list[int]:
    return [
        n.lineno
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == attribute
    ]


def test_transactions_commit_only_in_the_services() -> None:
    """Repositories, routes, the pure packages and the dashboard neither open a unit of work nor
    commit (the unit of work itself and the migrations' runner are the database layer's own)."""
    paths = sorted((ROOT / "monitor/db").glob("*_repo.py")) + [
        p
        for package in ("monitor/api", "monitor/metrics", "monitor/domain", "alerts", "dashboards")
        for p in _modules(package)
    ]
    outside = [f"{p.relative_to(ROOT)}:{line}" for p in paths for line in _calls(p, "commit") + _calls(p, "uow")]
    assert not outside, outside


MAX_LINES = 64


@pytest.mark.parametrize("package", ["alerts", "monitor/services"])
def test_functions_stay_short_or_say_why(package: str) -> None:
    """The alert pipeline and the services read in small steps: a function of more than
    MAX_LINES lines says in its docstring why it is one piece ("kept whole: ...")."""
    long = []
    for p in _modules(package):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_LINES and "kept whole:" not in (ast.get_docstring(node) or ""):
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, long


def test_the_client_needs_nothing_but_the_standard_library_and_httpx() -> None:
    """The light client distribution (client/) installs httpx alone: its package may import the
    standard library, httpx and itself (tqdm only where installed, for a progress bar)."""
    allowed = set(sys.stdlib_module_names) | {"httpx", "monitor_client", "tqdm"}
    wrong = {
        f"{p.relative_to(ROOT)}: {name}"
        for p in _modules("client/monitor_client")
        for name in _imports(p)
        if name.split(".")[0] not in allowed
    }
    assert not wrong, sorted(wrong)
