from __future__ import annotations

import pytest

from alerts.signing import WebhookVerificationError, headers, new_secret, sign, verify

# The Standard Webhooks specification's published test vector.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specifications_test_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE
    h = {"Webhook-Id": MSG_ID, "Webhook-Timestamp": str(TIMESTAMP), "Webhook-Signature": SIGNATURE}
    assert verify(SECRET, h, BODY, now=TIMESTAMP + 10) == MSG_ID


def test_rotation_lists_several_signatures() -> None:
    h = {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": f"v1,bm9wZQ== {SIGNATURE}"}
    assert verify(SECRET, h, BODY, now=TIMESTAMP) == MSG_ID


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"body": BODY + b" "}, "no signature matches"),
        ({"secret": new_secret()}, "no signature matches"),
        ({"now": TIMESTAMP + 301}, "outside the tolerance"),
        ({"now": TIMESTAMP - 301}, "outside the tolerance"),
        ({"drop": "webhook-id"}, "missing header webhook-id"),
    ],
)
def test_tampering_replay_and_missing_headers_are_refused(change: dict, reason: str) -> None:
    h = {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE}
    h.pop(change.get("drop", ""), None)
    with pytest.raises(WebhookVerificationError, match=reason):
        verify(change.get("secret", SECRET), h, change.get("body", BODY), now=change.get("now", TIMESTAMP))


def test_headers_round_trip_with_a_fresh_secret() -> None:
    secret = new_secret()
    h = headers(secret, "msg_1", b"{}")
    assert verify(secret, h, b"{}") == "msg_1"


def test_the_sdk_ships_the_verify_helper() -> None:
    from monitor.client import WebhookVerificationError as SdkError
    from monitor.client import verify_webhook

    h = {"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE}
    assert verify_webhook(SECRET, h, BODY, now=TIMESTAMP) == MSG_ID
    with pytest.raises(SdkError):
        verify_webhook(SECRET, h, b"{}", now=TIMESTAMP)
