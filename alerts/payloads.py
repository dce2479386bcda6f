"""What receivers get: Alertmanager's webhook payload (version 4), a Slack incoming-webhook
message, alerts for Alertmanager's ``POST /api/v2/alerts``, and the retraining event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of a firing alert


_FNV_OFFSET, _FNV_PRIME, _SEPARATOR = 14695981039346656037, 1099511628211, b"\xff"


def alertmanager_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (prometheus/common's ``LabelSet.Fingerprint``:
    FNV-1a 64 over the sorted names and values, each followed by byte 255), as its API shows it:
    16 hex digits. Receivers that join alerts across systems by fingerprint find ours."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name.encode(), _SEPARATOR, labels[name].encode(), _SEPARATOR):
            for byte in part:
                h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def rfc3339(ts: datetime | None) -> str:
    return ZERO_TIME if ts is None else ts.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Notice:
    """One alert as notifications show it."""

    fingerprint: str
    status: str  # "firing" | "resolved"
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str = ""

    def as_alertmanager(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at),
            "generatorURL": self.generator_url,
            # Alertmanager's, of the labels; an alert deleted since (no labels known) keeps our id
            "fingerprint": alertmanager_fingerprint(self.labels) if self.labels else self.fingerprint,
        }


def _common(dicts: list[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def alertmanager_webhook(
    receiver: str, group_key: str, group_labels: dict[str, str], notices: list[Notice], external_url: str = ""
) -> dict[str, Any]:
    """The body Alertmanager's webhook receiver sends: anything that reads it reads this."""
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if any(n.status == "firing" for n in notices) else "resolved",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": _common([n.labels for n in notices]),
        "commonAnnotations": _common([n.annotations for n in notices]),
        "externalURL": external_url,
        "alerts": [n.as_alertmanager() for n in notices],
    }


_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}


def _slack_text(text: str) -> str:
    """Slack reads ``<!channel>``, ``<@U123>`` and ``<url|text>`` in message text: a feature name or
    label value from the monitored data must not ping a channel or forge a link. Slack's own rule:
    escape &, < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Attachments one Slack message lists (firing first); the rest are counted in one more. Slack
# refuses a message of over 100 attachments, and the per-feature drift alerts of a wide model
# arrive as one group of hundreds.
SLACK_MAX_ATTACHMENTS = 20


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message from an Alertmanager-shaped payload."""
    firing = [a for a in payload["alerts"] if a["status"] == "firing"]
    resolved = [a for a in payload["alerts"] if a["status"] == "resolved"]
    name = payload["commonLabels"].get("alertname") or ", ".join(
        sorted({a["labels"]["alertname"] for a in payload["alerts"]})
    )
    head = f"[{payload['status'].upper()}{':' + str(len(firing)) if firing else ''}] {_slack_text(name)}"
    attachments = []
    shown = firing + resolved
    for a in shown[:SLACK_MAX_ATTACHMENTS]:
        labels = a["labels"]
        what = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity"))
        text = a["annotations"].get("description") or a["annotations"].get("summary") or what
        link = a["annotations"].get("dashboard") or a.get("generatorURL") or ""
        title = f"{a['status']}: {a['annotations'].get('summary') or labels.get('alertname', '')}"
        attachments.append(
            {
                "color": "#2ca02c"
                if a["status"] == "resolved"
                else _COLOURS.get(labels.get("severity", ""), "#7f7f7f"),
                "title": _slack_text(title),
                "title_link": link,
                "text": _slack_text(text),
                "footer": _slack_text(what),
            }
        )
    if len(shown) > SLACK_MAX_ATTACHMENTS:
        more = len(shown) - SLACK_MAX_ATTACHMENTS
        link = next((a["annotations"].get("dashboard") for a in shown if a["annotations"].get("dashboard")), "")
        attachments.append(
            {
                "color": "#7f7f7f",
                "title": f"and {more:,} more alerts in this group",
                "title_link": link or payload.get("externalURL", ""),
                "text": "the full list is on the dashboard and in the webhook payload",
            }
        )
    return {"text": f"{head} ({len(firing)} firing, {len(resolved)} resolved)", "attachments": attachments}


def alertmanager_alerts(notices: list[Notice]) -> list[dict[str, Any]]:
    """Body of Alertmanager's ``POST /api/v2/alerts``: re-sent while firing, endsAt set on resolve."""
    out = []
    for n in notices:
        a: dict[str, Any] = {
            "labels": n.labels,
            "annotations": n.annotations,
            "startsAt": rfc3339(n.starts_at),
            "generatorURL": n.generator_url,
        }
        if n.ends_at is not None:
            a["endsAt"] = rfc3339(n.ends_at)
        out.append(a)
    return out


def version_event(
    *,
    event: str,
    model: str,
    champion: str | None,
    challenger: str,
    rule: str,
    reason: str,
    evidence: list[dict[str, Any]],
    link: str,
    fingerprint: str,
    at: datetime,
) -> dict[str, Any]:
    """``model.promotion_suggested`` or ``model.rollback_suggested``: a challenger compared with
    the champion, in the Standard Webhooks payload shape."""
    return {
        "type": event,
        "timestamp": rfc3339(at),
        "data": {
            "model": model,
            "champion": champion,
            "challenger": challenger,
            "rule": rule,
            "reason": reason,
            "alert_fingerprint": fingerprint,
            "evidence": evidence,
            "link": link,
        },
    }


def retrain_event(
    *,
    model: str,
    version: str,
    rule: str,
    reason: str,
    evidence: list[dict[str, Any]],
    reference: dict[str, Any] | None,
    link: str,
    fingerprint: str,
    at: datetime,
    export: str | None = None,
) -> dict[str, Any]:
    """``model.retrain_requested``, in the Standard Webhooks payload shape (type, timestamp, data);
    ``export`` is where the window's rows with their labels can be fetched."""
    return {
        "type": "model.retrain_requested",
        "timestamp": rfc3339(at),
        "data": {
            "model": model,
            "version": version,
            "rule": rule,
            "reason": reason,
            "alert_fingerprint": fingerprint,
            "evidence": evidence,
            "reference": reference,
            "link": link,
            "export": export,
        },
    }
