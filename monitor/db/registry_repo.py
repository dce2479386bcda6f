"""Models and their versions. Functions take a connection and never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select, update

from monitor.db.tables import ingest_stats, model_versions, models, reference_datasets
from monitor.domain.deployment import Deployment


@dataclass(frozen=True, slots=True)
class VersionRow:
    model_id: int
    model_name: str
    task: str
    version_id: int
    version: str
    schema: dict[str, Any]
    description: str
    created_at: datetime
    deployment: str = "unspecified"
    deployment_since: datetime | None = None

    @property
    def feature_names(self) -> list[str]:
        """The schema's features, in its order."""
        return [f["name"] for f in self.schema.get("features", [])]


def _version_query() -> Select[Any]:
    return select(
        models.c.id.label("model_id"),
        models.c.name.label("model_name"),
        models.c.task,
        model_versions.c.id.label("version_id"),
        model_versions.c.version,
        model_versions.c.schema,
        model_versions.c.description,
        model_versions.c.created_at,
        model_versions.c.deployment,
        model_versions.c.deployment_since,
    ).join(model_versions, model_versions.c.model_id == models.c.id)


def get_model_id(conn: Connection, name: str) -> int | None:
    return conn.execute(select(models.c.id).where(models.c.name == name)).scalar()


def get_version(conn: Connection, name: str, version: str | None) -> VersionRow | None:
    """A named version, or the newest registered one when ``version`` is None."""
    q = _version_query().where(models.c.name == name)
    q = q.where(model_versions.c.version == version) if version is not None else q
    row = conn.execute(q.order_by(model_versions.c.id.desc()).limit(1)).mappings().first()
    return VersionRow(**row) if row else None


def primary_of(versions: list[VersionRow]) -> VersionRow:
    """Of one model's versions, oldest first, the primary one (as ``get_primary_version``)."""
    champions = [v for v in versions if v.deployment == Deployment.champion.value]
    return champions[-1] if champions else versions[-1]


def get_primary_version(conn: Connection, name: str) -> VersionRow | None:
    """The version a model is known by where none is named: its champion, or the newest
    registered one where no champion is declared (a shadow or a canary registered after the
    champion is not the model's face, nor where its unversioned records go)."""
    versions = list_versions(conn, name)
    return primary_of(versions) if versions else None


def list_versions(conn: Connection, name: str | None = None) -> list[VersionRow]:
    q = _version_query()
    if name is not None:
        q = q.where(models.c.name == name)
    rows = conn.execute(q.order_by(models.c.name, model_versions.c.id)).mappings()
    return [VersionRow(**r) for r in rows]


def insert_model(conn: Connection, name: str, task: str, description: str) -> int:
    return int(
        conn.execute(
            models.insert().values(name=name, task=task, description=description).returning(models.c.id)
        ).scalar_one()
    )


def lock_model(conn: Connection, model_id: int) -> None:
    """Serialise registrations of versions of one model."""
    conn.execute(select(models.c.id).where(models.c.id == model_id).with_for_update())


def insert_version(conn: Connection, model_id: int, version: str, schema: dict[str, Any], description: str) -> int:
    return int(
        conn.execute(
            model_versions.insert()
            .values(model_id=model_id, version=version, schema=schema, description=description)
            .returning(model_versions.c.id)
        ).scalar_one()
    )


def set_deployment(conn: Connection, model_id: int, version_id: int, mode: str) -> None:
    """Say how a version serves; a new champion retires the one before it."""
    if mode == "champion":
        conn.execute(
            update(model_versions)
            .where(
                model_versions.c.model_id == model_id,
                model_versions.c.deployment == "champion",
                model_versions.c.id != version_id,
            )
            .values(deployment="retired", deployment_since=func.now())
        )
    conn.execute(
        update(model_versions)
        .where(model_versions.c.id == version_id)
        .values(deployment=mode, deployment_since=func.now())
    )


def active_references(conn: Connection, model_id: int) -> dict[int, dict[str, Any]]:
    """The reference in use per version id: id, row count, format, upload time."""
    rows = conn.execute(
        select(
            reference_datasets.c.model_version_id,
            reference_datasets.c.id,
            reference_datasets.c.name,
            reference_datasets.c.row_count,
            reference_datasets.c.source_format,
            reference_datasets.c.created_at,
        ).where(reference_datasets.c.model_id == model_id, reference_datasets.c.is_active)
    ).mappings()
    return {r["model_version_id"]: {k: v for k, v in r.items() if k != "model_version_id"} for r in rows}


def ingest_totals(conn: Connection, model_id: int) -> dict[str, dict[str, int]]:
    """Accepted, duplicate and rejected counts per kind over the model's life (from hourly stats)."""
    rows = conn.execute(
        select(
            ingest_stats.c.kind,
            func.sum(ingest_stats.c.accepted),
            func.sum(ingest_stats.c.duplicates),
            func.sum(ingest_stats.c.rejected),
        )
        .where(ingest_stats.c.model_id == model_id)
        .group_by(ingest_stats.c.kind)
    ).all()
    return {k: {"accepted": int(a), "duplicates": int(d), "rejected": int(r)} for k, a, d, r in rows}


def get_monitoring(conn: Connection, model_id: int) -> dict[str, Any]:
    monitoring: dict[str, Any] = conn.execute(select(models.c.monitoring).where(models.c.id == model_id)).scalar_one()
    return monitoring


def set_monitoring(conn: Connection, model_id: int, monitoring: dict[str, Any]) -> None:
    conn.execute(models.update().where(models.c.id == model_id).values(monitoring=monitoring))


def list_model_names(conn: Connection) -> list[str]:
    return list(conn.execute(select(models.c.name).order_by(models.c.name)).scalars())


def list_model_ids(conn: Connection) -> list[int]:
    return list(conn.execute(select(models.c.id).order_by(models.c.id)).scalars())
