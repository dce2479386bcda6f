"""The sample a model keeping summaries only keeps whole (``personal_data.sample_rate``).

A prediction is in the sample when the first 64 bits of the SHA-256 of its stored id, read as an
unsigned number, fall below ``sample_rate`` times 2**64: a uniform draw the same for every process and
every retry of the prediction, needing no state, and that SQL computes alike from the id in the
log (``monitor.db.prediction_key.IN_SAMPLE_SQL``) to tell the sample from what is only held for
its label. Clients choose ids, not their digests: an id cannot be steered into the sample.
"""

from __future__ import annotations

import hashlib


def sample_threshold(rate: float) -> bytes | None:
    """The 8 big-endian bytes an id's digest must fall below to be in the sample; None when the
    rate is 1 (every prediction)."""
    if rate >= 1.0:
        return None
    return min(int(rate * 2**64), 2**64 - 1).to_bytes(8, "big")


def in_sample(prediction_id: str, threshold: bytes | None) -> bool:
    """Whether the prediction stored as ``prediction_id`` is in the sample of ``threshold``
    (``sample_threshold``). Bytes compare as the big-endian numbers they spell."""
    if threshold is None:
        return True
    return hashlib.sha256(prediction_id.encode("utf-8", "surrogatepass")).digest()[:8] < threshold
