"""KServe's payload logger: CloudEvents in binary mode, a request and a response sharing one
``Ce-Id``, with V1 bodies (``instances`` / ``predictions``) or Open Inference Protocol V2 bodies
(``inputs`` / ``outputs`` tensors). Pure: turns a matched pair into prediction records in the
shape ``POST /v1/predictions`` takes, with feature names from the registered schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.domain.schema import ModelSchema, Task, class_key
from monitor.errors import RecordError

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


class KServeError(ValueError):
    """A payload this endpoint cannot read; says which part and why."""


@dataclass(frozen=True)
class CloudEvent:
    id: str
    type: str  # REQUEST or RESPONSE
    model: str  # Ce-Inferenceservicename
    time: str | None
    body: bytes
    endpoint: str | None = None  # Ce-Endpoint: "canary" for a canary rollout's predictor

    @classmethod
    def from_headers(cls, headers: dict[str, str], body: bytes) -> CloudEvent:
        h = {k.lower(): v for k, v in headers.items()}
        missing = [k for k in ("ce-id", "ce-type", "ce-inferenceservicename") if not h.get(k)]
        if missing:
            raise KServeError(f"missing CloudEvent header(s): {', '.join(missing)}")
        if h["ce-type"] not in (REQUEST, RESPONSE):
            raise KServeError(f"ce-type {h['ce-type']!r} is neither {REQUEST} nor {RESPONSE}")
        return cls(h["ce-id"], h["ce-type"], h["ce-inferenceservicename"], h.get("ce-time"), body, h.get("ce-endpoint"))


def _tensor(t: dict[str, Any], where: str) -> np.ndarray:
    """An OIP V2 tensor as an array of its shape (data may be flat or nested)."""
    try:
        shape = [int(d) for d in t["shape"]]
        data = np.asarray(t["data"], dtype=object).reshape(shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise KServeError(f"{where}: not a V2 tensor with shape and data ({exc})") from None
    return data


def _rows(t: dict[str, Any], where: str, width: int) -> list[list[Any] | KServeError]:
    """The rows of a [n, width] tensor. Given nested, a row of another length is that instance's
    error alone (a ragged tensor lost every instance with it); given flat, the shape must hold."""
    data, shape = t.get("data"), t.get("shape")
    if isinstance(data, list) and data and all(isinstance(r, list) for r in data):
        if not isinstance(shape, list) or not shape or shape[0] != len(data):
            raise KServeError(f"{where}: {len(data)} rows for the shape {shape}")
        return [
            r if len(r) == width else KServeError(f"{where}[{i}]: {len(r)} values for {width} features")
            for i, r in enumerate(data)
        ]
    array = _tensor(t, where)
    if array.ndim != 2 or array.shape[1] != width:
        raise KServeError(f"{where}: shape {list(array.shape)} does not hold {width} features per row")
    return [row.tolist() for row in array]


def request_rows(doc: Any, schema: ModelSchema) -> list[dict[str, Any] | KServeError]:
    """Feature dicts, one per instance (a ``KServeError`` in place of one that cannot be read).
    V1: ``instances`` of lists (schema order) or objects (by name); V2: one input of shape [n, k]
    (schema order) or one input per feature of shape [n] or [n, 1] (by name). A body whose shape
    cannot be read at all raises ``KServeError``."""
    if not isinstance(doc, dict):
        raise KServeError("request body: expected a JSON object")
    if "instances" in doc:
        return _v1_rows(doc["instances"], schema)
    if "inputs" in doc:
        return _v2_rows(doc["inputs"], schema.feature_names())
    raise KServeError("request body: neither V1 'instances' nor V2 'inputs'")


def _v1_rows(instances: Any, schema: ModelSchema) -> list[dict[str, Any] | KServeError]:
    """V1 ``instances``: objects by feature name, or lists in schema order (trailing optional
    features may be left out)."""
    if not isinstance(instances, list):
        raise KServeError("instances: expected a list")
    names = schema.feature_names()
    out: list[dict[str, Any] | KServeError] = []
    for i, inst in enumerate(instances):
        if isinstance(inst, dict):
            out.append(inst)
        elif not isinstance(inst, list):
            out.append(KServeError(f"instances[{i}]: expected a list or an object"))
        elif len(inst) > len(names) or any(f.required for f in schema.features[len(inst) :]):
            out.append(KServeError(f"instances[{i}]: {len(inst)} values for {len(names)} features {names}"))
        else:
            out.append(dict(zip(names, inst, strict=False)))
    return out


def _v2_rows(inputs: Any, names: list[str]) -> list[dict[str, Any] | KServeError]:
    """V2 ``inputs``: one tensor of shape [n, k] in schema order, or one per feature by name."""
    if not isinstance(inputs, list) or not inputs:
        raise KServeError("inputs: expected a non-empty list of tensors")
    if not all(isinstance(t, dict) for t in inputs):
        raise KServeError("inputs: expected a list of tensors (objects with name, shape and data)")
    if len(inputs) == 1 and inputs[0].get("name") not in names:
        return [
            row if isinstance(row, KServeError) else dict(zip(names, row, strict=True))
            for row in _rows(inputs[0], "inputs[0]", len(names))
        ]
    by_name = {t.get("name"): t for t in inputs}
    columns = {
        name: _tensor(by_name[name], f"inputs[{name}]").reshape(-1).tolist() for name in names if name in by_name
    }
    if not columns:
        raise KServeError(f"inputs: no tensor named after a feature ({', '.join(names)})")
    n = {len(c) for c in columns.values()}
    if len(n) != 1:
        raise KServeError("inputs: feature tensors of different lengths")
    return [{k: v[i] for k, v in columns.items()} for i in range(n.pop())]


def _prediction(value: Any, schema: ModelSchema, where: str) -> tuple[Any, dict[str, float] | None]:
    """(prediction, scores) from one output row: a label, a class index, a number, or a
    probability per class (in the schema's class order; binary may give the positive one)."""
    classes = schema.classes or []
    if isinstance(value, list) and len(value) == 1 and schema.task is not Task.binary_classification:
        value = value[0]  # a row of a [n, 1] tensor: the value itself (binary: its probability, below)
    if schema.task is Task.regression:
        return value, None
    if isinstance(value, list):
        try:
            probs = [float(v) for v in value]
        except (TypeError, ValueError):
            raise KServeError(f"{where}: expected a list of probabilities, got {str(value)[:200]}") from None
        if len(probs) == len(classes):
            return classes[int(np.argmax(probs))], dict(zip(classes, probs, strict=True))
        if len(probs) == 1 and schema.task is Task.binary_classification:
            value = probs[0]
        else:
            raise KServeError(f"{where}: {len(probs)} probabilities for {len(classes)} classes")
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value, None
    key = class_key(value)
    if key is not None and key in classes:
        return key, None  # the class itself (a model whose classes are numbers predicts them)
    if isinstance(value, bool):
        return classes[int(value)], None
    if isinstance(value, float) and value.is_integer() and schema.task is Task.multiclass_classification:
        value = int(value)  # a class index in a V2 FP32/FP64 tensor
    if isinstance(value, int) and 0 <= value < len(classes):
        return classes[value], None  # a class index, as scikit-learn servers return
    if isinstance(value, float) and schema.task is Task.binary_classification and 0 <= value <= 1:
        positive = schema.positive_class or classes[1]
        return (positive if value >= 0.5 else next(c for c in classes if c != positive)), {positive: value}
    raise KServeError(f"{where}: cannot read {value!r} as a prediction for classes {classes}")


Output = tuple[Any, dict[str, float] | None]


def _each(values: list[Any], schema: ModelSchema, where: str) -> list[Output | KServeError]:
    out: list[Output | KServeError] = []
    for i, v in enumerate(values):
        try:
            out.append(_prediction(v, schema, f"{where}[{i}]"))
        except KServeError as exc:
            out.append(exc)
    return out


def response_rows(doc: Any, schema: ModelSchema) -> list[Output | KServeError]:
    """(prediction, scores) per instance, a ``KServeError`` in place of one that cannot be read."""
    if not isinstance(doc, dict):
        raise KServeError("response body: expected a JSON object")
    if "predictions" in doc:
        if not isinstance(doc["predictions"], list):
            raise KServeError("predictions: expected a list")
        return _each(doc["predictions"], schema, "predictions")
    if "outputs" in doc:
        outputs = doc["outputs"]
        if not isinstance(outputs, list) or not outputs:
            raise KServeError("outputs: expected a non-empty list of tensors")
        by_name = {o.get("name"): o for o in outputs if isinstance(o, dict)}
        label = next((by_name[n] for n in LABEL_OUTPUTS if n in by_name), None)
        probabilities = next((by_name[n] for n in PROBABILITY_OUTPUTS if n in by_name), None)
        if len(outputs) == 1 or label is None or probabilities is None or schema.task is Task.regression:
            chosen = outputs[0] if len(outputs) == 1 else (label or probabilities or outputs[0])
            return _each(_output_rows(chosen, "outputs[0]"), schema, f"outputs[{chosen.get('name', 0)}]")
        # both, by name: the prediction served is the label output's, the scores the probabilities'
        said = _each(_output_rows(label, "outputs[predict]"), schema, f"outputs[{label['name']}]")
        scored = _each(_output_rows(probabilities, "outputs[proba]"), schema, f"outputs[{probabilities['name']}]")
        if len(said) != len(scored):
            raise KServeError(f"outputs: {len(said)} labels but {len(scored)} rows of probabilities")
        return [
            s if isinstance(s, KServeError) else p if isinstance(p, KServeError) else (s[0], p[1])
            for s, p in zip(said, scored, strict=True)
        ]
    raise KServeError("response body: neither V1 'predictions' nor V2 'outputs'")


# V2 outputs by name, as KServe's scikit-learn and XGBoost servers name them (and ONNX's and
# Triton's common names): where a response holds both, the label is the prediction served and the
# probabilities its scores; one output alone is read for both, as before.
LABEL_OUTPUTS = ("predict", "output_label", "label", "labels")
PROBABILITY_OUTPUTS = ("predict_proba", "output_probability", "probabilities", "probability", "probs")


def _output_rows(t: Any, where: str) -> list[Any]:
    if not isinstance(t, dict):
        raise KServeError(f"{where}: not a V2 tensor")
    data = _tensor(t, where)
    return data.tolist() if data.ndim > 1 else data.reshape(-1).tolist()


def pair_to_records(
    event_id: str, request: Any, response: Any, schema: ModelSchema, timestamp: str | None, version: str | None = None
) -> tuple[list[dict[str, Any]], list[RecordError]]:
    """One prediction record per readable instance: id ``<ce-id>-<i>``, the request's features,
    the response's prediction and scores; and an error, by instance index, for each instance that
    cannot be read (the others are stored). Whatever shape the bodies have, the answer is that or
    a ``KServeError`` for the pair, never another exception."""
    try:
        features = request_rows(request, schema)
        outputs = response_rows(response, schema)
    except KServeError:
        raise
    except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
        raise KServeError(f"the request/response pair cannot be read: {type(exc).__name__}: {str(exc)[:200]}") from None
    if len(features) != len(outputs):
        raise KServeError(f"{len(features)} instances in the request but {len(outputs)} in the response")
    records: list[dict[str, Any]] = []
    errors: list[RecordError] = []
    for i, (feats, out) in enumerate(zip(features, outputs, strict=True)):
        bad = next((x for x in (feats, out) if isinstance(x, KServeError)), None)
        if bad is not None:
            errors.append(RecordError(i, "instances" if bad is feats else "predictions", str(bad)))
            continue
        assert not isinstance(feats, KServeError) and not isinstance(out, KServeError)
        prediction, scores = out
        # the request id is the instance's, whichever version scored it (a shadow or a mirrored
        # canary logs the same Ce-Id); a named version's prediction id carries the version, so
        # two versions' predictions of one request are two predictions
        request_id = f"{event_id}-{i}"
        pid = request_id if version is None else f"{request_id}@{version}"
        rec: dict[str, Any] = {
            "prediction_id": pid,
            "request_id": request_id,
            "features": feats,
            "prediction": prediction,
        }
        if scores is not None:
            rec["scores"] = scores
        if timestamp:
            rec["timestamp"] = timestamp
        records.append(rec)
    return records, errors
