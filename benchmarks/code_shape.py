"""The shape of the product's code, as figures: its longest functions and its most complex ones
(McCabe's number, as ruff's C901 counts it), per package, and how many functions pass a bound.

    python benchmarks/code_shape.py [--top 10]

Tests and benchmarks are left out: the figures are about the code users run."""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "alerts", "dashboards")


def function_lengths() -> list[tuple[int, str]]:
    """(lines, where) of every function and method, decorators and docstring included."""
    found: list[tuple[int, str]] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                    lines = node.end_lineno - node.lineno + 1
                    found.append((lines, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


def complexities() -> list[tuple[int, str]]:
    """(McCabe complexity, where) of every function, from ruff with its bound set to 0, so that
    every function reports its number."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "C901",
            "--config",
            "lint.mccabe.max-complexity=0",
            "--output-format",
            "json",
            "--no-cache",
            *PACKAGES,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    found: list[tuple[int, str]] = []
    for item in json.loads(result.stdout or "[]"):
        match = re.search(r"`(.+)` is too complex \((\d+) > 0\)", item["message"])
        if match:
            path = Path(item["filename"]).relative_to(ROOT)
            found.append((int(match.group(2)), f"{path}:{item['location']['row']} {match.group(1)}"))
    return sorted(found, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    lengths = function_lengths()
    print(f"functions: {len(lengths)}")
    for bound in (40, 60, 80):
        print(f"  longer than {bound} lines: {sum(1 for n, _ in lengths if n > bound)}")
    print(f"longest {args.top}:")
    for n, where in lengths[: args.top]:
        print(f"  {n:4d} lines  {where}")
    complex_ = complexities()
    for bound in (10, 12, 15):
        print(f"  complexity above {bound}: {sum(1 for n, _ in complex_ if n > bound)}")
    print(f"most complex {args.top}:")
    for n, where in complex_[: args.top]:
        print(f"  {n:4d}        {where}")


if __name__ == "__main__":
    main()
