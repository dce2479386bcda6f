"""What each route answers, for the OpenAPI document (and so for every client generated from it;
the contract test checks the answers against it). The routes still encode their answers with
orjson: these models describe the bodies, they are not a second encoding step. An object may
carry more fields than listed (``extra="allow"``): new fields are added, not renamed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from alerts.records import AlertHistoryEntry, AlertRecord, DeliveryAttempt
from alerts.state import State


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- health ---------------------------------------------------------------------------------------


class Healthy(Out):
    status: str


class Ready(Out):
    status: str
    revision: str | None


# -- ingestion ------------------------------------------------------------------------------------


class RecordErrorOut(Out):
    index: int | None
    field: str
    reason: str


class PredictionsStored(Out):
    accepted: int
    duplicates: int
    rejected: int
    ids: list[str | None]  # per input record, in order; None where it was rejected
    duplicate_ids: list[str]
    errors: list[RecordErrorOut]


class LabelsStored(Out):
    accepted: int
    new: int
    replaced: int
    matched: int
    waiting: int
    rejected: int
    errors: list[RecordErrorOut]


class KServeReceived(Out):
    event: str
    status: str  # "stored", "waiting for the response", "duplicate: ..."
    accepted: int | None = None
    duplicates: int | None = None
    rejected: int | None = None
    errors: list[RecordErrorOut] | None = None


# -- models ---------------------------------------------------------------------------------------


class VersionView(Out):
    version: str
    schema_: dict[str, Any] = Field(alias="schema")  # "schema" is a BaseModel attribute's name
    description: str
    created_at: datetime
    reference: dict[str, Any] | None
    deployment: str = "unspecified"  # champion, canary, ab, shadow, retired, unspecified
    deployment_since: datetime | None = None


class ModelView(Out):
    name: str
    task: str
    latest_version: str
    versions: list[VersionView]
    ingested: dict[str, dict[str, int]] | None = None


class ModelList(Out):
    models: list[ModelView]


class ReferenceStored(Out):
    model: str
    version: str
    reference_id: int
    rows: int
    format: str
    segments: dict[str, int]
    labelled: bool
    calibrated: bool = Field(description="scores calibrated on the labels: quality is estimated before labels arrive")
    reconstruction: bool = Field(description="a reconstruction model fitted: multivariate drift is measured")
    importance: bool = Field(
        description="each feature's importance to the model's output known (its rows' mean absolute attribution, "
        "else estimated): drift is weighed by it (dataset_drift.importance_weighted)"
    )
    attributions: bool = Field(
        description="its rows carry attributions: each window's are compared with them (attribution_drift.change)"
    )


class FeatureImportanceOut(Out):
    feature: str
    value: float = Field(description="mean absolute attribution, or the share of the output's variance lost")
    low: float = Field(description="95 % interval's lower end (attributions), or the least lost over the shuffles")
    high: float
    share: float = Field(description="its share of all the features' importance")


class ImportanceOut(Out):
    model: str
    version: str
    reference_id: int
    method: str | None = Field(description="'mean absolute attribution', 'permutation of a surrogate', or null: none")
    output: str | None = Field(description="what the importance is of: the attributions, or the model's output")
    attributions: bool = Field(description="the reference's rows carry attributions")
    features: list[FeatureImportanceOut] = Field(description="the most important first")


class MetricPointOut(Out):
    metric: str
    version: str
    labels: dict[str, str]
    window_start: datetime
    window_end: datetime
    value: float | None
    sample_size: int
    reference_size: int | None
    threshold: float | None
    drifted: bool | None
    details: dict[str, Any]
    computed_at: datetime


class MetricPoints(Out):
    points: list[MetricPointOut]


# -- keys -----------------------------------------------------------------------------------------


class KeyCreated(Out):
    key: str  # shown in this answer only
    id: int
    name: str
    prefix: str
    scopes: list[str]


class KeyInfo(Out):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class KeyList(Out):
    keys: list[KeyInfo]


# -- rules and receivers --------------------------------------------------------------------------


class StoredRule(Out):
    name: str
    definition: dict[str, Any]
    source: str  # "api" or "file"
    updated_at: datetime


class FileErrors(Out):
    path: str
    loaded_at: datetime
    errors: list[dict[str, Any]]


class RuleList(Out):
    rules: list[StoredRule]
    file_errors: list[FileErrors]


class InhibitRuleList(Out):
    inhibit_rules: list[StoredRule]


class ReceiverOut(Out):
    name: str
    kind: str
    url: str
    headers: dict[str, str]  # names only: every value reads "<hidden>"
    group_by: list[str]
    group_wait_s: int
    group_interval_s: int
    repeat_interval_s: int
    source: str
    updated_at: datetime | None = None
    secret: str | None = None  # when created or replaced only: the signing secret, shown once


class ReceiverList(Out):
    receivers: list[ReceiverOut]


# -- alerts ---------------------------------------------------------------------------------------


class AlertList(Out):
    alerts: list[AlertRecord]


class AlertHistory(Out):
    history: list[AlertHistoryEntry]


class SilenceOut(Out):
    id: str
    matchers: list[dict[str, str]]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime | None = None


class SilenceList(Out):
    silences: list[SilenceOut]


class OutboxMessage(Out):
    message_id: str
    receiver: str
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    body: Any


class OutboxList(Out):
    messages: list[OutboxMessage]


class Redelivery(Out):
    message_id: str
    status: str


class DeliveryList(Out):
    deliveries: list[DeliveryAttempt]


class TriggerOut(Out):
    id: int
    model: str
    version: str
    rule: str
    fingerprint: str
    receiver: str
    message_id: str
    reason: str
    evidence: list[dict[str, Any]]
    created_at: datetime
    event: str = "model.retrain_requested"  # or model.promotion_suggested, model.rollback_suggested
    delivery_status: str | None
    attempts: int | None


class TriggerList(Out):
    triggers: list[TriggerOut]


# -- reports --------------------------------------------------------------------------------------


class ReportInfo(Out):
    id: int
    version: str
    kind: str
    window_start: datetime
    window_end: datetime
    sample_size: int
    window_rows: int
    reference_sample_size: int
    created_at: datetime | None = None
    summary: Any = None  # one report: Evidently's JSON result


class ReportList(Out):
    reports: list[ReportInfo]


# -- records and the audit log -------------------------------------------------------------------


class LabelOut(Out):
    value: Any
    timestamp: datetime
    received_at: datetime
    first_received_at: datetime
    revision: int


class LabelRevision(Out):
    revision: int
    label: Any
    label_ts: datetime
    received_at: datetime
    replaced_at: datetime


class WindowHeld(Out):
    window_start: datetime
    window_end: datetime
    points: int  # metric points of all predictions and of the row's segments
    drifted: int
    segments: list[dict[str, Any]]


class AlertTransition(Out):
    fingerprint: str
    rule: str
    from_state: State
    to_state: State
    at: datetime
    value: float | None
    threshold: float | None
    labels: dict[str, Any]
    window_start: str | None
    window_end: str | None


class TriggerAbout(Out):
    id: int
    rule: str
    fingerprint: str
    receiver: str
    message_id: str
    reason: str
    created_at: datetime


class FeatureContribution(Out):
    feature: str
    value: Any = Field(description="the feature's value, as stored")
    attribution: float = Field(description="the feature's attribution, as logged")
    share: float = Field(description="its share of the prediction's total absolute attribution")


class PredictionExplanation(Out):
    total: float = Field(description="the attributions' sum (SHAP: the prediction less the base value)")
    contributions: list[FeatureContribution] = Field(description="every attributed feature, the largest first")


class PredictionRecord(Out):
    model: str
    version: str
    prediction_id: str
    timestamp: datetime
    received_at: datetime
    features: dict[str, Any]
    prediction: Any
    scores: dict[str, Any] | None
    latency_ms: float | None
    segments: dict[str, Any] | None
    explanation: PredictionExplanation | None = Field(
        description="the prediction's logged attributions, the largest first; null when none was logged"
    )
    label: LabelOut | None
    label_revisions: list[LabelRevision]
    windows: list[WindowHeld]
    alerts: list[AlertTransition]
    retrain_triggers: list[TriggerAbout]


class ErasureOut(Out):
    subject_hash: str = Field(description="the subject's keyed hash, hex: what the audit log names")
    predictions: int
    labels: int
    label_revisions: int


class AuditEntry(Out):
    id: int
    at: datetime
    via: str  # api, dashboard, cli, rules_file, system
    key_id: int | None
    key_name: str | None
    key_prefix: str | None
    client_address: str | None
    request_id: str | None
    action: str
    model: str | None
    target: str
    details: dict[str, Any]


class AuditPage(Out):
    entries: list[AuditEntry]
    next_before_id: int | None
