"""A small scikit-learn model server that logs to the monitor through the light client.

It needs only ``pip install ./client scikit-learn pandas`` (not the monitor itself). At start it trains
a churn classifier on synthetic data, registers the model with the monitor (an admin key) and
uploads its training sample as the reference; then it serves

    POST /predict  {"features": {"tenure": 12, "plan": "basic"}}
                   -> {"prediction_id": "...", "prediction": "stay", "score": 0.31}
    POST /outcome  {"prediction_id": "...", "label": "leave"}   (the truth, when it is known)

logging each prediction (with its latency) and each outcome without blocking the request.

    python docs/examples/sklearn_server.py --monitor http://127.0.0.1:8000 --key $ADMIN --port 9000
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from monitor_client import MonitorClient
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MODEL = "churn-sklearn"
PLANS = ["basic", "pro", "family"]
SPEC = {
    "name": MODEL,
    "version": "1",
    "task": "binary_classification",
    "classes": ["stay", "leave"],
    "positive_class": "leave",
    "features": [{"name": "tenure", "type": "numerical"}, {"name": "plan", "type": "categorical"}],
}


def customers(n: int, rng: random.Random) -> list[dict[str, Any]]:
    return [{"tenure": rng.randint(0, 72), "plan": rng.choice(PLANS)} for _ in range(n)]


def outcome(c: dict[str, Any], rng: random.Random) -> str:
    """Who leaves: short tenure on the basic plan, mostly."""
    p = 0.65 - c["tenure"] / 110 + (0.2 if c["plan"] == "basic" else 0.0)
    return "leave" if rng.random() < p else "stay"


def train(rng: random.Random, n: int = 2000) -> tuple[Any, list[dict[str, Any]], list[str]]:
    rows = customers(n, rng)
    y = [outcome(c, rng) for c in rows]
    model = make_pipeline(
        make_column_transformer((StandardScaler(), ["tenure"]), (OneHotEncoder(), ["plan"])),
        LogisticRegression(),
    )
    import pandas as pd  # the pipeline selects its columns by name

    model.fit(pd.DataFrame(rows), y)
    return model, rows, y


class ModelServer:
    def __init__(self, monitor_url: str, api_key: str, port: int = 0, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.model, rows, y = train(rng)
        self.client = MonitorClient(monitor_url, api_key, model=MODEL, flush_interval=0.2)
        self.client.register_model(SPEC)
        self._upload_reference(rows, y)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if self.path == "/predict":
                    answer = server.predict(body["features"])
                elif self.path == "/outcome":
                    server.client.log_label(body["prediction_id"], body["label"])
                    answer = {"ok": True}
                else:
                    self.send_error(404)
                    return
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"

    def _upload_reference(self, rows: list[dict[str, Any]], y: list[str]) -> None:
        import pandas as pd

        scores = self.model.predict_proba(pd.DataFrame(rows))[:, list(self.model.classes_).index("leave")]
        buf = io.StringIO()
        out = csv.writer(buf)
        out.writerow(["tenure", "plan", "prediction", "label", "score"])
        for c, label, s in zip(rows, y, scores, strict=True):
            out.writerow([c["tenure"], c["plan"], "leave" if s >= 0.5 else "stay", label, round(float(s), 4)])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "reference.csv"
            path.write_text(buf.getvalue())
            self.client.upload_reference(path, progress=False)

    def predict(self, features: dict[str, Any]) -> dict[str, Any]:
        import pandas as pd

        started = time.perf_counter()
        score = float(self.model.predict_proba(pd.DataFrame([features]))[0, list(self.model.classes_).index("leave")])
        prediction = "leave" if score >= 0.5 else "stay"
        latency_ms = (time.perf_counter() - started) * 1000
        # queued and sent in the background: the request does not wait for the monitor
        pid = self.client.log_prediction(features, prediction, scores=score, latency_ms=latency_ms)
        return {"prediction_id": pid, "prediction": prediction, "score": score}

    def serve_forever(self) -> None:
        self.http.serve_forever()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.client.close(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description="a scikit-learn model server logging to the monitor")
    ap.add_argument("--monitor", default="http://127.0.0.1:8000", help="the monitor's API")
    ap.add_argument("--key", required=True, help="an admin key (it registers the model)")
    ap.add_argument("--port", type=int, default=9000)
    args = ap.parse_args()
    server = ModelServer(args.monitor, args.key, args.port)
    print(f"model server on {server.url}: POST /predict, POST /outcome")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
