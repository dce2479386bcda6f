"""Every rules-file example the README shows loads as it reads: no key changes meaning (YAML 1.1
read the condition's `on: lower` as `true: lower`, and the README's own example was refused)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alerts.rules import Condition, load_yaml, parse_rules

README = (Path(__file__).parents[2] / "README.md").read_text()
BLOCKS = [
    block
    for block in (m.group(1) for m in re.finditer(r"```yaml\n(.*?)```", README, re.S))
    # KServe's resource and Prometheus' scrape configuration, not rules files
    if not block.lstrip().startswith(("apiVersion", "scrape_configs"))
]
BLOCKS = [re.sub(r"^  ", "", b, flags=re.M) if b.startswith("  ") else b for b in BLOCKS]  # in a list item


def test_the_readme_has_rules_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.split("\n", 1)[0][:40])
def test_each_rules_example_in_the_readme_loads(block: str) -> None:
    doc = load_yaml(block)
    rules, errors = parse_rules(doc.get("rules") or [])
    assert not errors, [e.as_dict() for e in errors]
    assert rules or doc.get("inhibit_rules") or doc.get("receivers")


def test_yaml_1_1_booleans_stay_words_and_true_and_false_stay_booleans() -> None:
    doc = load_yaml(
        "rules:\n- {name: r, metric: comparison.accuracy, condition: {op: '>=', threshold: 0.02, on: lower}}"
    )
    assert doc["rules"][0]["condition"] == {"op": ">=", "threshold": 0.02, "on": "lower"}
    assert Condition.model_validate(doc["rules"][0]["condition"]).on == "lower"
    assert load_yaml("a: yes\nb: off\nc: true\nd: False") == {"a": "yes", "b": "off", "c": True, "d": False}
