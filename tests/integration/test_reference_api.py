from __future__ import annotations

import io

import pandas as pd
import pytest
from sqlalchemy import text

from tests.integration.helpers import Api

FRAME = pd.DataFrame(
    {
        "tenure": [1.0, 5.0, 30.0],
        "plan": ["basic", "pro", "basic"],
        "autopay": [True, False, True],
        "prediction": ["stay", "leave", "stay"],
        "label": ["stay", "leave", "leave"],
        "score": [0.1, 0.8, 0.3],
        "country": ["NO", "SE", "NO"],
    }
)


def encode(fmt: str, df: pd.DataFrame = FRAME) -> tuple[bytes, str]:
    if fmt == "csv":
        return df.to_csv(index=False).encode(), "text/csv"
    if fmt == "parquet":
        buf = io.BytesIO()
        df.to_parquet(buf)
        return buf.getvalue(), "application/vnd.apache.parquet"
    return df.to_json(orient="records").encode(), "application/json"


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_upload_each_format(churn: Api, fmt: str) -> None:
    data, ctype = encode(fmt)
    r = churn.http.post("/v1/models/churn/reference", content=data, headers={**churn.admin, "Content-Type": ctype})
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 3 and r.json()["format"] == fmt
    assert churn.count("SELECT count(*) FROM reference_rows") == 3
    assert churn.count("SELECT count(*) FROM reference_rows WHERE label = '\"leave\"' AND scores ? 'leave'") == 2
    model = churn.http.get("/v1/models/churn", headers=churn.read).json()
    assert model["versions"][0]["reference"]["row_count"] == 3
    # drift is measured on summaries of every column, kept with the reference
    with churn.ctx.engine.connect() as conn:
        columns = dict(
            conn.execute(text("SELECT column_name, summary FROM reference_summaries WHERE segment = ''")).all()
        )
    assert set(columns) == {
        "features.tenure",
        "features.plan",
        "features.autopay",
        "prediction",
        "scores.leave",
        "_quality",  # the reference's own quality on its labelled rows: the concept-drift baseline
        "_score_layout",  # where the classifier's score bins go (monitor.metrics.score_layout)
        "_calibration",  # the scores against the labels: label-free estimation
    }
    assert columns["_quality"]["n_labelled"] == 3 and r.json()["labelled"] is True
    # too few rows to calibrate by measurement (the identity) or to fit a reconstruction model
    assert r.json()["calibrated"] is True and columns["_calibration"]["methods"] == ["identity"]
    assert r.json()["reconstruction"] is False
    assert columns["features.tenure"]["edges"] == [1.0, 5.0, 30.0] and columns["features.tenure"]["distinct"] == 3
    assert columns["features.autopay"]["counts"] == {"true": 2, "false": 1}
    assert columns["prediction"]["counts"] == {"stay": 2, "leave": 1}


def test_new_upload_replaces_the_active_reference(churn: Api) -> None:
    for _ in range(2):
        data, ctype = encode("csv")
        churn.http.post("/v1/models/churn/reference", content=data, headers={**churn.admin, "Content-Type": ctype})
    assert churn.count("SELECT count(*) FROM reference_datasets") == 2
    assert churn.count("SELECT count(*) FROM reference_datasets WHERE is_active") == 1


def test_a_reference_without_a_version_goes_to_the_champion_not_a_newer_shadow(churn: Api) -> None:
    from tests.integration.helpers import BINARY_SPEC

    api = churn
    assert api.http.post("/v1/models", json={**BINARY_SPEC, "version": "2"}, headers=api.admin).status_code == 201
    data, ctype = encode("csv")
    headers = {**api.admin, "Content-Type": ctype}

    def references() -> dict[str, int]:
        model = api.http.get("/v1/models/churn", headers=api.read).json()
        return {v["version"]: (v.get("reference") or {}).get("row_count", 0) for v in model["versions"]}

    # no champion declared: the newest version, as before
    assert api.http.post("/v1/models/churn/reference", content=data, headers=headers).status_code == 201
    assert references() == {"1": 0, "2": 3}
    deploy = "/v1/models/churn/versions/{}/deployment"
    assert api.http.put(deploy.format("1"), json={"mode": "champion"}, headers=api.admin).status_code == 200
    assert api.http.put(deploy.format("2"), json={"mode": "shadow"}, headers=api.admin).status_code == 200
    assert api.http.post("/v1/models/churn/reference", content=data, headers=headers).status_code == 201
    assert references() == {"1": 3, "2": 3}  # the champion's, not the shadow registered after it
    assert api.http.post("/v1/models/churn/reference?version=2", content=data, headers=headers).status_code == 201


def test_invalid_rows_reject_the_upload(churn: Api) -> None:
    df = FRAME.copy()
    df.loc[1, "label"] = "unknown-class"
    df["tenure"] = df["tenure"].astype(object)
    df.loc[2, "tenure"] = "thirty"
    data, ctype = encode("json", df)
    r = churn.http.post("/v1/models/churn/reference", content=data, headers={**churn.admin, "Content-Type": ctype})
    assert r.status_code == 422
    assert "2 of 3 rows are invalid" in r.json()["error"]["message"]
    assert [(d["index"], d["field"]) for d in r.json()["error"]["details"]] == [(1, "label"), (2, "features.tenure")]
    assert churn.count("SELECT count(*) FROM reference_datasets") == 0


def test_wrong_columns_and_unknown_format(churn: Api) -> None:
    data, ctype = encode("csv", FRAME.drop(columns=["tenure"]))
    r = churn.http.post("/v1/models/churn/reference", content=data, headers={**churn.admin, "Content-Type": ctype})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "tenure"
    r = churn.http.post(
        "/v1/models/churn/reference", content=b"x", headers={**churn.admin, "Content-Type": "application/zip"}
    )
    assert r.status_code == 400 and "?format=" in r.json()["error"]["message"]
    r = churn.http.post("/v1/models/ghost/reference", content=data, headers={**churn.admin, "Content-Type": ctype})
    assert r.status_code == 404


# A file as a data scientist has it: scikit-learn's and NannyML's names, a time and an id column,
# a feature under another name, a column the model does not use.
OWN_NAMES = FRAME.rename(
    columns={"prediction": "y_pred", "label": "y_true", "score": "y_pred_proba", "tenure": "months_active"}
).assign(timestamp=["2026-11-01", "2026-11-02", "2026-11-03"], row_id=[1, 2, 3], note=["a", "b", "c"])
MAPPING = {
    "prediction": "y_pred",
    "label": "y_true",
    "score": "y_pred_proba",
    "feature": "tenure:months_active",
    "timestamp": "timestamp",
    "id": "row_id",
    "ignore": "note",
}


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_a_file_with_its_own_column_names_uploads_with_a_mapping(churn: Api, fmt: str) -> None:
    data, ctype = encode(fmt, OWN_NAMES)
    url, headers = "/v1/models/churn/reference", {**churn.admin, "Content-Type": ctype}
    r = churn.http.post(url, content=data, headers=headers)
    assert r.status_code == 422
    unknown = {d["field"] for d in r.json()["error"]["details"]}
    assert {"y_pred", "y_true", "note"} <= unknown
    assert all("column mapping" in d["reason"] for d in r.json()["error"]["details"] if d["field"] == "y_pred")
    r = churn.http.post(url, content=data, headers=headers, params=MAPPING)
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 3 and r.json()["labelled"] is True
    stored = churn.count("SELECT count(*) FROM reference_rows WHERE prediction = '\"leave\"' AND label = '\"leave\"'")
    assert stored == 1
    # the same with every unknown column left out at once
    r = churn.http.post(url, content=data, headers=headers, params={**MAPPING, "ignore_unknown": "true", "ignore": []})
    assert r.status_code == 201, r.text


def test_a_mapping_naming_a_missing_column_says_which(churn: Api) -> None:
    data, ctype = encode("csv", OWN_NAMES)
    headers = {**churn.admin, "Content-Type": ctype}
    r = churn.http.post(
        "/v1/models/churn/reference", content=data, headers=headers, params={**MAPPING, "label": "truth"}
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0] == {
        "index": None,
        "field": "mapping.label",
        "reason": "no column 'truth' in the file",
    }
    r = churn.http.post("/v1/models/churn/reference", content=data, headers=headers, params={"feature": "tenure"})
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "feature"
    # a mapped column and a column already named for its role: which is meant is not guessed
    both = OWN_NAMES.assign(prediction=["stay", "stay", "stay"])
    data, _ = encode("csv", both)
    r = churn.http.post("/v1/models/churn/reference", content=data, headers=headers, params=MAPPING)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "prediction"
