from __future__ import annotations

from sqlalchemy import text

from tests.integration.helpers import Api, prediction


def labels(api: Api) -> dict[str, tuple]:
    with api.ctx.engine.connect() as conn:
        rows = conn.execute(text("SELECT prediction_id, label, revision, prediction_ts FROM labels")).all()
    return {r.prediction_id: (r.label, r.revision, r.prediction_ts) for r in rows}


def test_label_for_a_known_prediction_is_matched(churn: Api) -> None:
    churn.http.post("/v1/predictions", json={"model": "churn", "records": [prediction("a")]}, headers=churn.ingest)
    r = churn.http.post(
        "/v1/labels",
        json={"model": "churn", "records": [{"prediction_id": "a", "label": "leave"}]},
        headers=churn.ingest,
    )
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("accepted", "new", "replaced", "matched", "waiting")} == {
        "accepted": 1,
        "new": 1,
        "replaced": 0,
        "matched": 1,
        "waiting": 0,
    }
    label, revision, pts = labels(churn)["a"]
    assert label == "leave" and revision == 1 and pts is not None


def test_label_before_its_prediction_waits_and_joins_when_it_arrives(churn: Api) -> None:
    r = churn.http.post(
        "/v1/labels",
        json={"model": "churn", "records": [{"prediction_id": "early", "label": "stay"}]},
        headers=churn.ingest,
    ).json()
    assert (r["matched"], r["waiting"]) == (0, 1)
    assert labels(churn)["early"][2] is None
    churn.http.post("/v1/predictions", json={"model": "churn", "records": [prediction("early")]}, headers=churn.ingest)
    pts = labels(churn)["early"][2]
    assert pts is not None
    assert (
        churn.count(
            "SELECT count(*) FROM predictions p JOIN labels l USING (model_id, prediction_id) "
            "WHERE l.prediction_ts = p.ts"
        )
        == 1
    )


def test_second_label_replaces_the_first_and_records_its_time(churn: Api) -> None:
    churn.http.post("/v1/predictions", json={"model": "churn", "records": [prediction("a")]}, headers=churn.ingest)
    for label in ("stay", "leave"):
        churn.http.post(
            "/v1/labels",
            json={"model": "churn", "records": [{"prediction_id": "a", "label": label}]},
            headers=churn.ingest,
        )
    label, revision, _ = labels(churn)["a"]
    assert (label, revision) == ("leave", 2)
    assert churn.count("SELECT count(*) FROM labels WHERE received_at > first_received_at") == 1


def test_last_label_for_an_id_in_one_request_wins(churn: Api) -> None:
    recs = [{"prediction_id": "z", "label": "stay"}, {"prediction_id": "z", "label": "leave"}]
    r = churn.http.post("/v1/labels", json={"model": "churn", "records": recs}, headers=churn.ingest)
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert labels(churn)["z"][0] == "leave"


def test_bad_labels_are_rejected_whole_or_skipped(churn: Api) -> None:
    recs = [{"prediction_id": "a", "label": "stay"}, {"prediction_id": "b", "label": "perhaps"}, {"label": "stay"}]
    r = churn.http.post("/v1/labels", json={"model": "churn", "records": recs}, headers=churn.ingest)
    assert r.status_code == 422
    assert [(d["index"], d["field"]) for d in r.json()["error"]["details"]] == [(1, "label"), (2, "prediction_id")]
    assert labels(churn) == {}
    r = churn.http.post("/v1/labels?on_error=skip", json={"model": "churn", "records": recs}, headers=churn.ingest)
    assert r.json()["accepted"] == 1 and r.json()["rejected"] == 2
    assert list(labels(churn)) == ["a"]


def test_labels_for_unknown_model(churn: Api) -> None:
    r = churn.http.post(
        "/v1/labels", json={"model": "ghost", "records": [{"prediction_id": "a", "label": 1}]}, headers=churn.ingest
    )
    assert r.status_code == 404
