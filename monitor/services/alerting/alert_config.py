"""Rules and receivers: through the API, and from the rules file (reloaded when it changes).

A bad rule is refused with its field and reason; from the file, it is left out and reported
(``GET /v1/rules``) while every good rule loads: one bad rule never takes the engine down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from alerts.inhibit import InhibitRule
from alerts.receivers import ReceiverKind, ReceiverSpec
from alerts.rules import Rule, RuleError, load_yaml, parse_rule, parse_rules
from alerts.signing import new_secret
from alerts.urls import UnsafeURL, check_url
from monitor.config import Settings
from monitor.db import alert_repo, audit_repo
from monitor.db.alert_repo import AlertRepository, ReceiverRow, RuleRow
from monitor.domain.audit import RULES_FILE, SYSTEM, Actor
from monitor.errors import Conflict, MonitorError, NotFound
from monitor.metrics.names import metric_problem
from monitor.secret_box import SecretBox
from monitor.services.infra.context import ServiceContext

log = logging.getLogger(__name__)


def _rule_error(exc: RuleError) -> MonitorError:
    return MonitorError(f"rule refused: {exc}", [exc.as_dict()])


def list_rules(ctx: ServiceContext) -> dict[str, Any]:
    with ctx.uow() as uow:
        rules = uow.alerts.list_rules()
        errors = uow.alerts.file_errors()
    return {"rules": rules, "file_errors": errors}


def active_rules(ctx: ServiceContext) -> list[Rule]:
    """Every stored rule that still parses (they were checked when stored)."""
    out = []
    with ctx.reads() as uow:
        rows = uow.alerts.list_rules()
    for row in rows:
        try:
            out.append(parse_rule(row["definition"]))
        except RuleError as exc:  # stored by an older version with other rules
            log.error("stored rule %s no longer parses: %s", row["name"], exc)
    return out


def get_rule(ctx: ServiceContext, name: str) -> RuleRow:
    with ctx.uow() as uow:
        row = uow.alerts.get_rule(name)
    if row is None:
        raise NotFound(f"no rule named {name!r}")
    return row


def put_rule(
    ctx: ServiceContext, doc: Any, *, name: str | None = None, create: bool = False, actor: Actor = SYSTEM
) -> RuleRow:
    try:
        rule = parse_rule(doc)
    except RuleError as exc:
        raise _rule_error(exc) from None
    if name is not None and rule.name != name:
        raise MonitorError(f"the rule's name {rule.name!r} differs from the one in the path {name!r}")
    _check_metric(rule)
    with ctx.uow() as uow:
        existing = uow.alerts.get_rule(rule.name)
        if existing and existing["source"] == "file":
            raise Conflict(f"rule {rule.name!r} is defined in the rules file; change it there")
        if existing and create:
            raise Conflict(f"a rule named {rule.name!r} exists; PUT /v1/rules/{rule.name} replaces it")
        _check_receivers(uow.alerts, rule)
        uow.alerts.upsert_rule(rule.name, rule.to_doc(), "api")
        action = "rule.replaced" if existing else "rule.created"
        audit_repo.append(uow.conn, actor, action, rule.name, details={"definition": rule.to_doc()})
        stored = _written(uow.alerts.get_rule(rule.name))
        uow.commit()
    return stored


def _written(row: RuleRow | None) -> RuleRow:
    """A rule read back in the transaction that wrote it: there, whatever else happens."""
    assert row is not None, "a rule written in this transaction is there"
    return row


def _check_metric(rule: Rule) -> None:
    """A rule that can never fire is refused: its metric names no point the service writes, or
    its condition reads a bound its points do not have."""
    problem = metric_problem(rule.metric, rule.condition.on)
    if problem is not None:
        field = "metric" if problem.startswith("no metric") else "condition.on"
        raise _rule_error(RuleError(None, rule.name, field, problem))


def _check_receivers(alerts: AlertRepository, rule: Rule) -> None:
    names = {r["name"]: r["kind"] for r in alerts.list_receivers()}
    for i, r in enumerate(rule.receivers):
        if r not in names:
            raise _rule_error(RuleError(None, rule.name, f"receivers.{i}", f"no receiver named {r!r}"))
    for field, action in (("retrain", rule.retrain), ("promote", rule.promote), ("rollback", rule.rollback)):
        if action is not None and action.receiver not in names:
            raise _rule_error(RuleError(None, rule.name, f"{field}.receiver", f"no receiver named {action.receiver!r}"))


def delete_rule(ctx: ServiceContext, name: str, actor: Actor = SYSTEM) -> None:
    with ctx.uow() as uow:
        existing = uow.alerts.get_rule(name)
        if existing is None:
            raise NotFound(f"no rule named {name!r}")
        if existing["source"] == "file":
            raise Conflict(f"rule {name!r} is defined in the rules file; remove it there")
        uow.alerts.delete_rule(name)
        audit_repo.append(uow.conn, actor, "rule.deleted", name, details={"definition": existing["definition"]})
        uow.commit()


def _receiver_row(spec: ReceiverSpec, source: str, box: SecretBox, secret: str) -> ReceiverRow:
    """The stored form of a receiver: its signing ``secret`` and header values encrypted."""
    t = spec.timers()
    return {
        "name": spec.name,
        "kind": spec.kind.value,
        "url": spec.url,
        "secret": box.seal(secret),
        "headers": box.seal_headers(spec.headers or {}),
        "group_by": spec.group_by,
        "group_wait_s": int(t.group_wait.total_seconds()),
        "group_interval_s": int(t.group_interval.total_seconds()),
        "repeat_interval_s": int(t.repeat_interval.total_seconds()),
        "source": source,
    }


HIDDEN = "<hidden>"


def public_receiver(row: ReceiverRow) -> dict[str, Any]:
    """A receiver as shown: no secret, header names without their values (credentials, mostly)."""
    shown = {k: v for k, v in row.items() if k != "secret"}
    shown["headers"] = dict.fromkeys(row.get("headers") or {}, HIDDEN)
    return shown


def list_receivers(ctx: ServiceContext) -> list[dict[str, Any]]:
    with ctx.uow() as uow:
        return [public_receiver(r) for r in uow.alerts.list_receivers()]


def _refused(what: str, exc: ValidationError) -> MonitorError:
    """The first validation error, naming the field and the reason."""
    first = exc.errors()[0]
    field, reason = ".".join(str(p) for p in first["loc"]), first["msg"]
    return MonitorError(f"{what} refused: {field}: {reason}", [{"field": field, "reason": reason}])


def _receiver_spec(doc: Any, settings: Settings) -> ReceiverSpec:
    """The receiver a document describes, its URL checked against the settings as far as it can
    be without resolving (a literal address; names are resolved and checked before every
    attempt); ``MonitorError`` naming the field and the reason otherwise."""
    try:
        spec = ReceiverSpec.model_validate(doc)
        check_url(
            spec.url,
            allow_private=settings.allow_private_receivers,
            allow_loopback=settings.allow_loopback_receivers,
        )
    except ValidationError as exc:
        raise _refused("receiver", exc) from None
    except UnsafeURL as exc:
        raise MonitorError(f"receiver refused: url: {exc}", [{"field": "url", "reason": str(exc)}]) from None
    return spec


def put_receiver(ctx: ServiceContext, doc: Any, actor: Actor = SYSTEM) -> dict[str, Any]:
    """Create or replace a receiver; the answer carries its signing secret, the only time it is shown."""
    spec = _receiver_spec(doc, ctx.settings)
    box = ctx.secrets
    with ctx.uow() as uow:
        existing = uow.alerts.get_receiver(spec.name)
        if existing and existing["source"] == "file":
            raise Conflict(f"receiver {spec.name!r} is defined in the rules file; change it there")
        # an existing receiver keeps the secret its receivers already verify with
        secret = spec.secret or (box.open(existing["secret"]) if existing else new_secret())
        row = _receiver_row(spec, "api", box, secret)
        if existing and spec.headers is None:
            row["headers"] = existing["headers"]  # their values are never shown, so cannot be re-sent
        uow.alerts.upsert_receiver(row)
        shown = public_receiver(row)
        audit_repo.append(uow.conn, actor, "receiver.changed", spec.name, details=shown)  # no secret, no header value
        uow.commit()
    return shown | {"secret": secret}


# Receivers that verify the Standard Webhooks signature (the service's own event formats).
SIGNED_KINDS = {ReceiverKind.webhook, ReceiverKind.retrain}


def _unchecked_secret(alerts: AlertRepository, box: SecretBox, name: str) -> str:
    """A receiver that checks no signature keeps the secret it has (a stable webhook-signature
    header between loads), else gets a new one."""
    existing = alerts.get_receiver(name)
    return box.open(existing["secret"]) if existing else new_secret()


def rotate_secrets(ctx: ServiceContext, actor: Actor = SYSTEM) -> int:
    """Encrypt every stored receiver secret and header value with the first key of
    MONITOR_SECRET_KEYS (values from before encryption included); returns the receivers changed."""
    box = ctx.secrets
    with ctx.uow() as uow:
        rows = uow.alerts.list_receivers()
        for row in rows:
            uow.alerts.set_receiver_secrets(
                row["name"], box.rotate(row["secret"]), box.rotate_headers(row.get("headers") or {})
            )
        audit_repo.append(uow.conn, actor, "secrets.rotated", "receivers", details={"receivers": len(rows)})
        uow.commit()
    return len(rows)


def delete_receiver(ctx: ServiceContext, name: str, actor: Actor = SYSTEM) -> None:
    with ctx.uow() as uow:
        existing = uow.alerts.get_receiver(name)
        if existing is None:
            raise NotFound(f"no receiver named {name!r}")
        if existing["source"] == "file":
            raise Conflict(f"receiver {name!r} is defined in the rules file; remove it there")
        users = [
            r["name"]
            for r in uow.alerts.list_rules()
            if name in r["definition"].get("receivers", [])
            or any((r["definition"].get(a) or {}).get("receiver") == name for a in ("retrain", "promote", "rollback"))
        ]
        if users:
            raise Conflict(f"receiver {name!r} is used by rules {', '.join(users)}")
        uow.alerts.delete_receiver(name)
        audit_repo.append(
            uow.conn, actor, "receiver.deleted", name, details={"kind": existing["kind"], "url": existing["url"]}
        )
        uow.commit()


def list_inhibit_rules(ctx: ServiceContext) -> list[RuleRow]:
    with ctx.uow() as uow:
        return uow.alerts.list_rules(alert_repo.INHIBIT_RULES)


def _inhibit_rule(doc: Any) -> InhibitRule:
    try:
        return InhibitRule.model_validate(doc)
    except ValidationError as exc:
        raise _refused("inhibit rule", exc) from None


def put_inhibit_rule(ctx: ServiceContext, doc: Any, actor: Actor = SYSTEM) -> RuleRow:
    """Create or replace an inhibit rule."""
    rule = _inhibit_rule(doc)
    with ctx.uow() as uow:
        existing = uow.alerts.get_rule(rule.name, alert_repo.INHIBIT_RULES)
        if existing and existing["source"] == "file":
            raise Conflict(f"inhibit rule {rule.name!r} is defined in the rules file; change it there")
        uow.alerts.upsert_rule(rule.name, rule.to_doc(), "api", alert_repo.INHIBIT_RULES)
        audit_repo.append(uow.conn, actor, "inhibit_rule.changed", rule.name, details={"definition": rule.to_doc()})
        stored = _written(uow.alerts.get_rule(rule.name, alert_repo.INHIBIT_RULES))
        uow.commit()
    return stored


def delete_inhibit_rule(ctx: ServiceContext, name: str, actor: Actor = SYSTEM) -> None:
    with ctx.uow() as uow:
        existing = uow.alerts.get_rule(name, alert_repo.INHIBIT_RULES)
        if existing is None:
            raise NotFound(f"no inhibit rule named {name!r}")
        if existing["source"] == "file":
            raise Conflict(f"inhibit rule {name!r} is defined in the rules file; remove it there")
        uow.alerts.delete_rule(name, alert_repo.INHIBIT_RULES)
        audit_repo.append(uow.conn, actor, "inhibit_rule.deleted", name, details={"definition": existing["definition"]})
        uow.commit()


def _load_inhibit_rules(alerts: AlertRepository, docs: Any, errors: list[dict[str, Any]]) -> list[str]:
    """The rules file's inhibit rules stored (an invalid one left out, its error added); their names."""
    kept: list[str] = []
    if not isinstance(docs, list):
        errors.append({"field": "inhibit_rules", "reason": "expected a list of inhibit rules"})
        return kept
    for i, doc in enumerate(docs):
        name = doc.get("name") if isinstance(doc, dict) else None
        try:
            rule = _inhibit_rule(doc)
        except MonitorError as exc:
            errors += [{"inhibit_rule": name, "index": i, **d} for d in exc.details]
            continue
        existing = alerts.get_rule(rule.name, alert_repo.INHIBIT_RULES)
        if rule.name in kept or (existing and existing["source"] == "api"):
            errors.append({"inhibit_rule": rule.name, "index": i, "field": "name", "reason": "a duplicate name"})
            continue
        alerts.upsert_rule(rule.name, rule.to_doc(), "file", alert_repo.INHIBIT_RULES)
        kept.append(rule.name)
    return kept


def _load_receivers(
    ctx: ServiceContext, alerts: AlertRepository, docs: list[Any], errors: list[dict[str, Any]]
) -> list[str]:
    """The rules file's receivers stored (an invalid one left out, its error added); their names."""
    receivers: list[str] = []
    for i, rdoc in enumerate(docs):
        try:
            spec = _receiver_spec(rdoc, ctx.settings)
        except MonitorError as exc:
            name = rdoc.get("name") if isinstance(rdoc, dict) else None
            errors += [{"receiver": name, "index": i, **d} for d in exc.details]
            continue
        secret = spec.secret
        if secret is None and spec.kind in SIGNED_KINDS:
            # its receiver verifies signatures with it: a new one on every load would break that
            errors.append(
                {"receiver": spec.name, "index": i, "field": "secret", "reason": "a file receiver needs its secret"}
            )
            continue
        # Slack and Alertmanager verify no signature: the secret only signs, never checked
        secret = secret or _unchecked_secret(alerts, ctx.secrets, spec.name)
        alerts.upsert_receiver(_receiver_row(spec, "file", ctx.secrets, secret))
        receivers.append(spec.name)
    return receivers


@dataclass
class RulesFile:
    """Reloads the rules file when its modification time or size changes."""

    path: Path
    _seen: tuple[float, int] | None = None

    def sync(self, ctx: ServiceContext, force: bool = False) -> bool:
        """Load the file if it changed; returns whether it was loaded."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            log.error("rules file %s does not exist", self.path)
            return False
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._seen and not force:
            return False
        self._seen = stamp
        load_rules_file(ctx, self.path.read_text())
        return True


def load_rules_file(ctx: ServiceContext, text: str, path: str = "rules file") -> list[dict[str, Any]]:
    """Replace the file-defined rules and receivers with the file's; returns the errors."""
    errors: list[dict[str, Any]] = []
    try:
        doc = load_yaml(text)
    except RuleError as exc:
        errors.append(exc.as_dict())
        doc = None
    with ctx.uow() as uow:
        if doc is None:  # unreadable: keep what was loaded before
            uow.alerts.set_file_errors(path, errors, datetime.now(UTC))
            uow.commit()
            log.error("rules file refused: %s", errors[0]["reason"])
            return errors
        receivers = _load_receivers(ctx, uow.alerts, doc.get("receivers") or [], errors)
        uow.alerts.delete_file_items("receivers", receivers)
        rules, rule_errors = parse_rules(doc.get("rules") or [])
        errors += [e.as_dict() for e in rule_errors]
        kept = []
        for rule in rules:
            try:
                _check_metric(rule)
                _check_receivers(uow.alerts, rule)
            except MonitorError as exc:
                errors += exc.details
                continue
            existing = uow.alerts.get_rule(rule.name)
            if existing and existing["source"] == "api":
                errors.append({"rule": rule.name, "field": "name", "reason": "a rule of this name exists from the API"})
                continue
            uow.alerts.upsert_rule(rule.name, rule.to_doc(), "file")
            kept.append(rule.name)
        uow.alerts.delete_file_items("rules", kept)
        inhibiting = _load_inhibit_rules(uow.alerts, doc.get("inhibit_rules") or [], errors)
        uow.alerts.delete_file_items(alert_repo.INHIBIT_RULES, inhibiting)
        uow.alerts.set_file_errors(path, errors, datetime.now(UTC))
        loaded = {"rules": kept, "inhibit_rules": inhibiting, "receivers": receivers, "refused": len(errors)}
        audit_repo.append(uow.conn, RULES_FILE, "rules_file.loaded", path, details=loaded)
        uow.commit()
    for e in errors:
        log.error("rules file: %s", e)
    log.info(
        "rules file loaded: %d rules, %d inhibit rules, %d receivers, %d refused",
        len(kept),
        len(inhibiting),
        len(receivers),
        len(errors),
    )
    return errors
