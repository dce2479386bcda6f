"""Notification groups keyed as Alertmanager keys them: ``{}/{receiver="oncall"}:{alertname="x",
model="m"}`` (``alerts.dispatch.group_key``), where the key was the receiver and a JSON object of
the grouping labels; a group's labels leave out those the alerts do not have, as Alertmanager's.

Every stored group is carried over, so an alert told firing under the old key is still told
resolved under the new one. The key is computed here rather than imported: a migration stays
what it was when it was written.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _quote(text: str) -> str:  # Go's strconv.Quote, as alerts.dispatch.go_quote
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _new_key(receiver: str, labels: dict[str, str]) -> str:
    kept = {k: v for k, v in labels.items() if v}
    return "{}/{receiver=" + _quote(receiver) + "}:{" + ", ".join(f"{k}={_quote(kept[k])}" for k in sorted(kept)) + "}"


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT receiver, group_key, group_labels FROM notification_groups")).all()
    for receiver, key, labels in rows:
        kept = {k: v for k, v in (labels or {}).items() if v}
        conn.execute(
            sa.text(
                "UPDATE notification_groups SET group_key = :new, group_labels = CAST(:labels AS jsonb) "
                "WHERE receiver = :r AND group_key = :old"
            ),
            {"new": _new_key(receiver, kept), "labels": json.dumps(kept), "r": receiver, "old": key},
        )


def downgrade() -> None:
    conn = op.get_bind()
    group_by = dict(conn.execute(sa.text("SELECT name, group_by FROM receivers")).all())
    rows = conn.execute(sa.text("SELECT receiver, group_key, group_labels FROM notification_groups")).all()
    for receiver, key, labels in rows:
        names = group_by.get(receiver) or sorted(labels or {})
        chosen = {k: (labels or {}).get(k, "") for k in sorted(names)}
        old = f"{receiver}:" + json.dumps(chosen, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        conn.execute(
            sa.text(
                "UPDATE notification_groups SET group_key = :old, group_labels = CAST(:labels AS jsonb) "
                "WHERE receiver = :r AND group_key = :new"
            ),
            {"old": old, "labels": json.dumps(chosen), "r": receiver, "new": key},
        )
