"""The demo's on-call console: each alert printed when it starts firing and when it resolves,
with the time it did, however often its group's message is sent again."""

from __future__ import annotations

import pytest

from monitor.demo_receivers import AlertPrinter


def _alert(name: str, status: str, starts: str, ends: str = "0001-01-01T00:00:00Z") -> dict[str, object]:
    return {
        "status": status,
        "labels": {"alertname": "feature-drift", "severity": "warning", "feature": name},
        "annotations": {"summary": f"{name} drifted"},
        "startsAt": starts,
        "endsAt": ends,
        "fingerprint": f"fp-{name}",
    }


def test_a_groups_messages_print_only_what_changed_with_its_time(capsys: pytest.CaptureFixture[str]) -> None:
    show = AlertPrinter()
    show({"alerts": [_alert("age", "firing", "2026-12-05T19:00:00Z")]})
    # the group is sent again when income starts firing: it carries age, still firing, too
    show(
        {
            "alerts": [
                _alert("age", "firing", "2026-12-05T19:00:00Z"),
                _alert("income", "firing", "2026-12-05T20:00:00Z"),
            ]
        }
    )
    show(
        {
            "alerts": [
                _alert("age", "firing", "2026-12-05T19:00:00Z"),
                _alert("income", "firing", "2026-12-05T20:00:00Z"),
            ]
        }
    )
    show(
        {
            "alerts": [
                _alert("age", "resolved", "2026-12-05T19:00:00Z", "2026-12-05T23:00:00Z"),
                _alert("income", "firing", "2026-12-05T20:00:00Z"),
            ]
        }
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "  [on-call 2026-12-05 19:00 UTC] FIRING warning: age drifted",
        "  [on-call 2026-12-05 20:00 UTC] FIRING warning: income drifted",
        "  [on-call 2026-12-05 23:00 UTC] RESOLVED warning: age drifted",
    ]
