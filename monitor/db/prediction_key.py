"""A prediction's key: what the log's uniqueness and the label join look a prediction up by.

The first 128 bits of the SHA-256 of the client's prediction id (its UTF-8 bytes), stored as a
``uuid``: 16 bytes of fixed width where the id itself (commonly a 36-character UUID in text, and
up to 256 characters) was stored twice more, in the key table and in its index, for every
prediction (177 bytes a prediction in all, against 112 now; ``benchmarks/storage.py``).

Two ids of a model share a key with a probability of about n² / 2¹²⁹ for n ids: below 10⁻¹⁹
for a model logging 1,000 predictions a second for 90 days, the chance of two random UUIDs
colliding. SHA-256, unlike MD5, cannot be steered into a collision by choosing ids, so a client
cannot make one prediction pass for another's duplicate. The id itself is kept with the row in
the log, which is what the look-up and export show.

Python computes the keys it writes and looks up (``key_of``); SQL computes the same value
where a statement starts from stored ids (``KEY_OF_SQL``): a label joining its prediction, and
the migration that carried the keys over. Both are tested equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

# The key of a text expression, in SQL (format it with the expression). The text's UTF-8 bytes
# come from a cast to bytea with its backslashes doubled (bytea's input reads one as an escape),
# not from convert_to: that is only stable, and Citus refuses a stable function of a column in an
# UPDATE. Every part is immutable and built in, so on Citus it runs on the shard.
KEY_OF_SQL = r"CAST(encode(substring(sha256(CAST(replace({}, '\', '\\') AS bytea)) FROM 1 FOR 16), 'hex') AS uuid)"


def key_of(prediction_id: str) -> str:
    """The key of an id, as the 32 hex digits Postgres reads as a ``uuid`` (in COPY and arrays).
    An id that cannot be stored (an unpaired surrogate) still has a key: it finds nothing."""
    return key_bytes(prediction_id).hex()


def key_bytes(prediction_id: str) -> bytes:
    """The key of an id as the 16 bytes a binary COPY writes a ``uuid`` as (``key_of``'s digits)."""
    return hashlib.sha256(prediction_id.encode("utf-8", "surrogatepass")).digest()[:16]


def keys_of(prediction_ids: Iterable[str]) -> list[str]:
    return [key_of(pid) for pid in prediction_ids]


# Whether a stored id is in a summaries-only model's sample (``monitor.domain.row_sample``), in SQL:
# the first 8 bytes of the same digest, compared as bytes (big-endian numbers) with the threshold.
# Format it with the id's SQL and the threshold's bind parameter.
IN_SAMPLE_SQL = r"substring(sha256(CAST(replace({}, '\', '\\') AS bytea)) FROM 1 FOR 8) < {}"
