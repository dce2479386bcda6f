"""A data subject's records erased on request: every model's predictions that named the subject,
with their keys, labels and replaced labels, in one transaction, audited under the subject's
keyed hash (never the subject as given).

What stays, and why that is allowed: the summaries (per minute, hour, day and week) and the
metric points computed before the erasure. They are counts, sums and histograms over many
predictions and hold no row, no identifier and no value of one person that could be found again.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.db import audit_repo, log_repo, registry_repo
from monitor.domain.audit import SYSTEM, Actor
from monitor.services.infra.context import ServiceContext


@dataclass(frozen=True)
class Erasure:
    subject_hash: str  # under the current key, hex: what the audit log names
    predictions: int
    labels: int
    label_revisions: int


def erase_subject(ctx: ServiceContext, subject: str, actor: Actor = SYSTEM) -> Erasure:
    """Erase everything stored of ``subject`` in every model; idempotent (a second call erases 0)."""
    hashes = ctx.secrets.subject_hashes(subject)  # every key's: records from before a rotation too
    predictions = labels = revisions = 0
    with ctx.uow() as uow:
        for model_id in registry_repo.list_model_ids(uow.conn):
            erased = log_repo.erase_subject(uow.conn, model_id, hashes)
            predictions += erased.predictions
            labels += erased.labels
            revisions += erased.label_revisions
        shown = hashes[0].hex()
        details = {"predictions": predictions, "labels": labels, "label_revisions": revisions}
        audit_repo.append(uow.conn, actor, "subject.erased", f"subject {shown}", details=details)
        uow.commit()
    return Erasure(shown, predictions, labels, revisions)
