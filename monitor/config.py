"""The one settings object: every knob is a ``MONITOR_*`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "model-monitor"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MONITOR_", env_file=".env", extra="ignore")

    # Unset: an embedded Postgres (pgserver) is started in ``data_dir``/postgres.
    database_url: str | None = None
    data_dir: Path = Field(default_factory=_default_data_dir)

    host: str = "127.0.0.1"
    port: int = 8000

    # Request bodies larger than this are refused with 413 before they are parsed.
    max_body_bytes: int = 32 * 1024 * 1024
    # Reference datasets are uploaded whole and can be much larger than a batch of predictions.
    max_reference_bytes: int = 512 * 1024 * 1024
    # A request's body must arrive whole within this many seconds of its headers (408 and the
    # connection closed otherwise), and its head within header_timeout_seconds of the connection
    # (or of the previous response): a client trickling bytes cannot hold a connection open.
    body_timeout_seconds: float = Field(60.0, gt=0)
    header_timeout_seconds: float = Field(10.0, gt=0)
    # Connections and requests in flight per API process; past it new ones get 503.
    max_connections: int = Field(1000, ge=1)
    # The addresses (or networks, CIDR) of the reverse proxies in front of the API whose
    # X-Forwarded-For and X-Forwarded-Proto are believed, comma-separated. Empty (the default):
    # none, the connection's own address is the client's — uvicorn believed any process on the
    # host, which let a local client pick the address the failed-login limit and the audit log see.
    trusted_proxies: str = ""
    # HTTPS: a PEM certificate (its chain after it) and its private key. Both set: the API and
    # the dashboard serve HTTPS only, with HSTS, and the dashboard's login cookie is Secure.
    # Unset: plain HTTP, for loopback or behind a TLS-terminating proxy (see trusted_proxies).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # The key file's passphrase, if it has one.
    tls_key_password: SecretStr | None = None

    # Records per request; bigger batches should be split by the client.
    max_batch_records: int = 100_000

    # Prediction-log partitions are one day wide; older ones are dropped after this many days.
    retention_days: int = 90
    # An hour of the log is compacted into blocks this many hours after it ended: a third of the
    # bytes a row (monitor.db.log_blocks). Until then its rows are one a row, where a label
    # finds its prediction fastest and a late prediction joins its hour's rows.
    log_compact_after_hours: int = Field(2, ge=0)
    # What outlives the log: metric points, hourly summaries, reports, alerts that ended and
    # their history, finished webhooks and their delivery log. Kept this long (a year of drift
    # history and the month before it), then deleted by the hourly maintenance.
    history_retention_days: int = Field(400, ge=1)
    # Partitions created ahead of time so ingestion never waits on DDL at midnight.
    partitions_ahead_days: int = 7
    # How far in the future a prediction timestamp may lie (client clock skew).
    max_future_skew_seconds: int = 3600

    # /metrics/database exports the per-feature drift series of this many features per model and window, the
    # most drifted first (plus every model's count of drifted features): a 2,000-feature model
    # would otherwise add 4,000 series per window to every scrape.
    metrics_max_features: int = Field(50, ge=0)

    # API keys are cached after a successful lookup for this long (revocation delay).
    api_key_cache_seconds: float = 10.0

    # How long a process trusts its cached lookup of a model version (other processes registering
    # a newer version are seen by records without an explicit version after at most this long).
    registry_cache_seconds: float = 2.0

    db_pool_size: int = 10

    # Requests per API key and API process: a bucket refilled at this rate, holding at most the
    # burst; over it, 429 with Retry-After. 0 turns the limit off.
    rate_limit_per_second: float = 200.0
    rate_limit_burst: float = 400.0

    # Failed authentications (a wrong or revoked key, a failed dashboard login) per client
    # address and process: past the burst, 429 before the key is even looked up, refilled at
    # this rate. 0 turns it off.
    auth_failures_per_second: float = 1.0
    auth_failures_burst: float = 20.0

    # Full Evidently reports: the most rows a report may sample from its window (its cost grows
    # with them: ~14 s of CPU and 3.7 MB of HTML at 50,000), and how long stored reports are kept.
    # One report is built at a time per API key (429 with Retry-After for another meanwhile).
    report_max_sample_size: int = Field(20_000, ge=100)
    report_retention_days: int = Field(30, ge=1)

    # Exports of a window's rows (GET /v1/models/{name}/export): each holds a database connection
    # and a read transaction while it streams, so at most this many run at once per API process,
    # and one at a time per key (429 with Retry-After otherwise).
    export_max_concurrent: int = Field(2, ge=1)

    # Logs: one JSON object per line with the request id ("json"), or plain text ("text").
    log_format: Literal["json", "text"] = "json"

    # Alerting. A YAML file of rules and receivers, reloaded when it changes (rules and receivers
    # can also be managed through /v1/rules and /v1/receivers).
    rules_file: Path | None = None
    # Receiver URLs resolving to private or loopback addresses are refused unless allowed here
    # (request forgery: a rule author could otherwise make the service call internal systems).
    allow_private_receivers: bool = False
    allow_loopback_receivers: bool = False
    # Keys that encrypt receiver signing secrets and header values at rest: comma-separated
    # Fernet keys (`monitor secrets new-key`), the first encrypts, all decrypt. Unset: one key
    # generated into data_dir/secret.key (one host only; processes on several hosts share this).
    secret_keys: SecretStr | None = None
    # Where alert links point: the dashboard's base URL, and this API's own.
    dashboard_url: str = "http://127.0.0.1:8050"
    public_url: str = "http://127.0.0.1:8000"
    # Webhook delivery: timeout per attempt, attempts before a message is marked failed (about a
    # day with the backoff capped at 10 minutes), and the lease a deliverer holds a message for.
    delivery_timeout_seconds: float = 10.0
    delivery_max_attempts: int = 150
    delivery_lease_seconds: float = 60.0
    # Scheduler processes share the models through leases this long, renewed at every tick and
    # every third of a lease during one: a process that dies (or stops renewing) has its models
    # taken over by the others within a lease. Longer than the scheduler's tick.
    scheduler_lease_seconds: float = Field(30.0, gt=0)

    # The dashboard (`monitor dashboard`): where it listens, and the key that signs its login
    # sessions (unset: a random one per process, so logins end when it restarts; set it when
    # several dashboard processes sit behind one address).
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8050
    dashboard_secret_key: SecretStr | None = None
    # A dashboard login lasts this long (logging out ends it at once, in every replica).
    dashboard_session_hours: float = Field(12.0, gt=0)

    @field_validator("tls_cert_file", "tls_key_file", "tls_key_password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # compose passes an unset variable on as "" (``${MONITOR_TLS_KEY_PASSWORD:-}``)
        return None if value == "" else value

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @model_validator(mode="after")
    def _tls_needs_both_files(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("MONITOR_TLS_CERT_FILE and MONITOR_TLS_KEY_FILE are set together or not at all")
        return self

    @model_validator(mode="after")
    def _history_outlives_the_log(self) -> Self:
        # windows over the log are computed from its hourly summaries, part of the history
        if self.history_retention_days < self.retention_days:
            raise ValueError(
                f"MONITOR_HISTORY_RETENTION_DAYS ({self.history_retention_days}) must be at least "
                f"MONITOR_RETENTION_DAYS ({self.retention_days}): windows over the log are computed "
                "from its hourly summaries"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
