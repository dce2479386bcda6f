"""Feature documents as numbers: what the metric maths and the export read of a record's features."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np


def feature_block(features: Sequence[dict[str, Any]], keys: Sequence[str]) -> np.ndarray:
    """Rows x keys of feature documents as floats: None (or an absent key) NaN, "Infinity" ±inf.
    itemgetter looks every key up in C, a row at a time: the fast way through many dicts; a row
    without one of the keys (an optional feature left out) takes the slower .get."""
    if not keys:
        return np.empty((len(features), 0))
    get = itemgetter(*keys) if len(keys) > 1 else (lambda d, k=keys[0]: (d[k],))
    rows = []
    for d in features:
        try:
            rows.append(get(d))
        except KeyError:
            rows.append(tuple(d.get(k) for k in keys))
    return np.array(rows, dtype=float).reshape(len(features), len(keys))
