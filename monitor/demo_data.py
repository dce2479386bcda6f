"""A synthetic credit-default world for the demo, the tests and the benchmarks.

A model trained on the "before" world scores applicants; after the drift point the applicant
population shifts (lower incomes, higher debt ratios, more self-employed, a new region mix)
and the relation between inputs and default changes too (concept drift), so both data drift
and a quality drop become visible once labels arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MODEL_NAME = "credit-default"
CLASSES = ["repaid", "default"]
EMPLOYMENT = ["salaried", "self-employed", "unemployed", "retired"]
REGIONS = ["north", "south", "east", "west"]

SPEC: dict[str, Any] = {
    "name": MODEL_NAME,
    "version": "1",
    "task": "binary_classification",
    "description": "Demo: probability that a loan applicant defaults",
    "classes": CLASSES,
    "positive_class": "default",
    "features": [
        {"name": "age", "type": "numerical"},
        {"name": "income", "type": "numerical"},
        {"name": "debt_ratio", "type": "numerical"},
        {"name": "credit_lines", "type": "numerical"},
        {"name": "late_payments", "type": "numerical"},
        {"name": "employment", "type": "categorical"},
        {"name": "region", "type": "categorical"},
        {"name": "has_mortgage", "type": "boolean"},
    ],
    "segments": ["region", "channel"],
}
CHANNELS = ["web", "branch", "partner"]


@dataclass
class Applicants:
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["age"])

    def records(self) -> list[dict[str, Any]]:
        names = list(self.columns)
        cols = [self.columns[n].tolist() for n in names]
        return [dict(zip(names, values, strict=True)) for values in zip(*cols, strict=True)]


def applicants(n: int, rng: np.random.Generator, drift: float = 0.0) -> Applicants:
    """``drift`` in [0, 1] moves the population from the reference world to the shifted one."""
    d = float(np.clip(drift, 0.0, 1.0))
    age = np.clip(rng.normal(42 - 4 * d, 12, n), 18, 90).round()
    income = np.round(rng.lognormal(np.log(52_000) - 0.35 * d, 0.45, n), 2)
    debt_ratio = np.round(np.clip(rng.beta(2 + 2.5 * d, 5, n), 0, 1), 4)
    credit_lines = rng.poisson(4 + d, n).astype(float)
    late_payments = rng.poisson(0.6 + 1.2 * d, n).astype(float)
    emp_p = np.array([0.62, 0.18, 0.08, 0.12]) * (1 - d) + np.array([0.40, 0.35, 0.17, 0.08]) * d
    reg_p = np.array([0.3, 0.25, 0.25, 0.2]) * (1 - d) + np.array([0.15, 0.45, 0.25, 0.15]) * d
    employment = rng.choice(EMPLOYMENT, n, p=emp_p / emp_p.sum())
    region = rng.choice(REGIONS, n, p=reg_p / reg_p.sum())
    has_mortgage = rng.random(n) < 0.35 - 0.1 * d
    return Applicants(
        {
            "age": age,
            "income": income,
            "debt_ratio": debt_ratio,
            "credit_lines": credit_lines,
            "late_payments": late_payments,
            "employment": employment,
            "region": region,
            "has_mortgage": has_mortgage,
        }
    )


def _logit(a: Applicants, concept: float) -> np.ndarray:
    """The world's log-odds of default; ``concept`` > 0 makes late payments and unemployment
    weigh more than the deployed model learned."""
    c = a.columns
    shift = concept * (0.5 * c["late_payments"] + 0.8 * (c["employment"] == "unemployed"))
    z: np.ndarray = -2.2 + sum(_terms(a).values()) + shift
    return z


def _terms(a: Applicants) -> dict[str, np.ndarray]:
    """The deployed model's logit, term by term: each feature's part of it (``_logit`` at 0)."""
    c = a.columns
    return {
        "age": -0.015 * (c["age"] - 42),
        "income": -0.9 * (np.log(c["income"]) - np.log(52_000)),
        "debt_ratio": 3.0 * (c["debt_ratio"] - 0.3),
        "credit_lines": np.zeros(len(a)),
        "late_payments": 0.55 * c["late_payments"],
        "employment": 0.6 * (c["employment"] == "unemployed") + 0.25 * (c["employment"] == "self-employed"),
        "region": np.zeros(len(a)),
        "has_mortgage": -0.3 * c["has_mortgage"],
    }


_BASE_TERMS: dict[str, float] = {}


def attributions(a: Applicants) -> dict[str, np.ndarray]:
    """Each applicant's SHAP values (log-odds) under the deployed model: for a model additive in
    its features, feature i's is exactly its term less the term's mean over the reference world
    (estimated once from 200,000 applicants of it), as a serving system's explainer logs them."""
    if not _BASE_TERMS:
        world = _terms(applicants(200_000, np.random.default_rng(0)))
        _BASE_TERMS.update({f: float(t.mean()) for f, t in world.items()})
    return {f: np.round(t - _BASE_TERMS[f], 5) for f, t in _terms(a).items()}


def attribution_records(a: Applicants) -> list[dict[str, float]]:
    values = attributions(a)
    names = list(values)
    return [dict(zip(names, row, strict=True)) for row in zip(*(values[n].tolist() for n in names), strict=True)]


def model_scores(a: Applicants) -> np.ndarray:
    """The deployed model: it learned the reference world."""
    scores: np.ndarray = 1 / (1 + np.exp(-_logit(a, 0.0)))
    return scores


def true_default(a: Applicants, rng: np.random.Generator, drift: float = 0.0) -> np.ndarray:
    """Outcomes from the real world, whose relation to the inputs changes with ``drift``."""
    d = float(np.clip(drift, 0.0, 1.0))
    p = 1 / (1 + np.exp(-(_logit(a, d) + 0.9 * d)))
    return rng.random(len(a)) < p


def reference_frame(n: int, seed: int = 7) -> Any:
    """The reference dataset as a DataFrame: features, prediction, score, label and each
    feature's attribution."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    a = applicants(n, rng)
    scores = model_scores(a)
    df = pd.DataFrame(a.columns)
    df["prediction"] = np.where(scores >= 0.5, "default", "repaid")
    df["score"] = scores.round(5)
    df["label"] = np.where(true_default(a, rng), "default", "repaid")
    for name, values in attributions(a).items():
        df[f"attribution.{name}"] = values
    return df
