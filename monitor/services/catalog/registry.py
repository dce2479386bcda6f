"""Registering models and versions, and reading the registry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from monitor.db import audit_repo, ops_repo, registry_repo
from monitor.db.registry_repo import VersionRow
from monitor.domain.audit import SYSTEM, Actor
from monitor.domain.deployment import Deployment
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.errors import Conflict, MonitorError, NotFound
from monitor.services.infra.context import ServiceContext


def _version_view(v: VersionRow, reference: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "version": v.version,
        "schema": v.schema,
        "description": v.description,
        "created_at": v.created_at,
        "reference": reference,
        "deployment": v.deployment,
        "deployment_since": v.deployment_since,
    }


def _model_view(
    versions: list[VersionRow], references: dict[int, dict[str, Any]], totals: dict[str, dict[str, int]] | None = None
) -> dict[str, Any]:
    latest = versions[-1]
    view: dict[str, Any] = {
        "name": latest.model_name,
        "task": latest.task,
        "latest_version": latest.version,
        "versions": [_version_view(v, references.get(v.version_id)) for v in versions],
    }
    if totals is not None:
        view["ingested"] = totals
    return view


def _id_policy(schema: dict[str, Any]) -> str:
    return str(schema.get("personal_data", {}).get("prediction_id", "keep"))


def register_model(ctx: ServiceContext, spec: ModelSpec, actor: Actor = SYSTEM) -> tuple[dict[str, Any], bool]:
    """Register a model or a new version of it. Returns (model view, created).

    Registering an existing version again with the same schema is a no-op (safe to call on every
    deploy); with a different schema it is a conflict, because stored records were validated
    against the old one.
    """
    schema = spec.schema_only().model_dump(mode="json")
    for _ in range(2):  # a concurrent first registration of the same name loses the insert race once
        try:
            with ctx.uow() as uow:
                model_id = registry_repo.get_model_id(uow.conn, spec.name)
                if model_id is None:
                    model_id = registry_repo.insert_model(uow.conn, spec.name, spec.task.value, spec.description)
                else:
                    registry_repo.lock_model(uow.conn, model_id)
                existing = registry_repo.get_version(uow.conn, spec.name, spec.version)
                if existing is not None:
                    if existing.schema != schema:
                        raise Conflict(
                            f"model {spec.name!r} version {spec.version!r} is registered with a different schema; "
                            "register a new version instead"
                        )
                    created = False
                else:
                    latest = registry_repo.get_version(uow.conn, spec.name, None)
                    if latest is not None and latest.task != spec.task.value:
                        raise Conflict(
                            f"model {spec.name!r} is a {latest.task} model; a version cannot change the task"
                        )
                    if latest is not None and _id_policy(latest.schema) != _id_policy(schema):
                        raise Conflict(
                            f"model {spec.name!r} keeps its prediction ids as {_id_policy(latest.schema)}: a version "
                            "cannot change it (labels find every version's predictions by the same ids)"
                        )
                    registry_repo.insert_version(uow.conn, model_id, spec.version, schema, spec.description)
                    details = {"version": spec.version, "task": spec.task.value, "features": len(spec.features)}
                    audit_repo.append(
                        uow.conn, actor, "model.registered", spec.version, model=spec.name, details=details
                    )
                    created = True
                versions = registry_repo.list_versions(uow.conn, spec.name)
                refs = registry_repo.active_references(uow.conn, model_id)
                uow.commit()
            ctx.forget_versions()
            return _model_view(versions, refs), created
        except IntegrityError:
            continue
    raise Conflict(f"model {spec.name!r} is being registered concurrently; retry")


def list_models(ctx: ServiceContext) -> list[dict[str, Any]]:
    with ctx.uow() as uow:
        versions = registry_repo.list_versions(uow.conn)
        by_model: dict[int, list[VersionRow]] = {}
        for v in versions:
            by_model.setdefault(v.model_id, []).append(v)
        return [_model_view(vs, registry_repo.active_references(uow.conn, mid)) for mid, vs in by_model.items()]


def get_model(ctx: ServiceContext, name: str) -> dict[str, Any]:
    with ctx.uow() as uow:
        versions = registry_repo.list_versions(uow.conn, name)
        if not versions:
            raise NotFound(f"model {name!r} is not registered")
        mid = versions[0].model_id
        view = _model_view(
            versions, registry_repo.active_references(uow.conn, mid), registry_repo.ingest_totals(uow.conn, mid)
        )
        # the scheduler's jobs for the model: when they last succeeded, and what they last skipped
        view["jobs"] = ops_repo.model_job_runs(uow.conn, name)
        return view


def resolve_cached(ctx: ServiceContext, keys: list[tuple[str, str | None]]) -> dict[tuple[str, str | None], VersionRow]:
    """(model, version) -> its row for the ingestion paths: from the process's cache when there
    (``registry_cache_seconds``; a version registered by another process is seen that much later),
    else one unit of work for all the misses. ``version`` None means the primary version
    (``registry_repo.get_primary_version``: the champion, or the newest where none is declared)."""
    out: dict[tuple[str, str | None], VersionRow] = {}
    for key in keys:
        if (hit := ctx.cached_version(key)) is not None:
            out[key] = hit
    if len(out) == len(keys):
        return out
    with ctx.uow() as uow:
        for name, version in keys:
            if (name, version) in out:
                continue
            if version is None:
                row = registry_repo.get_primary_version(uow.conn, name)
            else:
                row = registry_repo.get_version(uow.conn, name, version)
            if row is None:
                if registry_repo.get_model_id(uow.conn, name) is None:
                    raise NotFound(f"model {name!r} is not registered")
                raise NotFound(f"model {name!r} has no version {version!r}")
            out[(name, version)] = row
            ctx.cache_version((name, version), row)
    return out


def versions_cached(ctx: ServiceContext, name: str) -> list[VersionRow]:
    """Every version of a model, oldest first, with how each is deployed: from the process's
    cache for ``registry_cache_seconds`` (the ingestion paths ask on every request); NotFound
    for a model never registered."""
    key = (name, "*")
    rows: list[VersionRow] | None = ctx.cached_version(key)
    if rows is None:
        with ctx.uow() as uow:
            rows = registry_repo.list_versions(uow.conn, name)
        if not rows:
            raise NotFound(f"model {name!r} is not registered")
        ctx.cache_version(key, rows)
    return rows


# how a version serves when it is live: the champion and its challengers
LIVE = {Deployment.champion.value, *(d.value for d in Deployment if d.is_challenger)}


def live_versions(ctx: ServiceContext, name: str) -> list[VersionRow]:
    """The versions monitored and alerted on: every version deployed live and the newest, the
    primary one first: the champion, or the newest where none is declared. The others follow,
    oldest first."""
    with ctx.reads() as uow:
        rows = registry_repo.list_versions(uow.conn, name)
    if not rows:
        raise NotFound(f"model {name!r} is not registered")
    primary = registry_repo.primary_of(rows)
    return [primary, *(v for v in rows if v is not primary and (v.deployment in LIVE or v is rows[-1]))]


def champion_of(ctx: ServiceContext, vrow: VersionRow) -> VersionRow | None:
    """The champion a version is compared with: None unless the version is a challenger and
    the model has a champion."""
    if not Deployment(vrow.deployment).is_challenger:
        return None
    with ctx.uow() as uow:
        versions = registry_repo.list_versions(uow.conn, vrow.model_name)
    return next((v for v in reversed(versions) if v.deployment == Deployment.champion.value), None)


def primary_version(ctx: ServiceContext, name: str) -> VersionRow:
    """The version the model's pages and series show: the champion, or the newest version where
    none is declared."""
    with ctx.uow() as uow:
        row = registry_repo.get_primary_version(uow.conn, name)
    if row is None:
        raise NotFound(f"model {name!r} is not registered")
    return row


def resolve_version(ctx: ServiceContext, name: str, version: str | None) -> VersionRow:
    """A named version, or where none is named the model's primary one: its champion, or the
    newest registered where no champion is declared (a shadow just registered is not where an
    unversioned reference, report or backfill goes, as it is not where unversioned records go)."""
    with ctx.uow() as uow:
        if version is None:
            row = registry_repo.get_primary_version(uow.conn, name)
        else:
            row = registry_repo.get_version(uow.conn, name, version)
    if row is None:
        if version is None:
            raise NotFound(f"model {name!r} is not registered")
        raise NotFound(f"model {name!r} has no version {version!r}")
    return row


def _check_protected(conn: Connection, name: str, config: MonitoringConfig) -> None:
    """A protected attribute is one of the newest version's segment columns: fairness compares
    its tracked values, which only segments have."""
    newest = registry_repo.get_version(conn, name, None)
    segments = set((newest.schema if newest else {}).get("segments") or [])
    for i, attribute in enumerate(config.protected_attributes):
        if attribute not in segments:
            raise MonitorError(
                f"protected attribute {attribute!r} is not one of the model's segment columns",
                [{"field": f"protected_attributes.{i}", "reason": "not a segment column"}],
            )


def model_id_or_404(conn: Connection, name: str) -> int:
    """The model's id inside the caller's unit of work, or NotFound."""
    model_id = registry_repo.get_model_id(conn, name)
    if model_id is None:
        raise NotFound(f"model {name!r} is not registered")
    return model_id


def set_deployment(
    ctx: ServiceContext, name: str, version: str, mode: Deployment, actor: Actor = SYSTEM
) -> dict[str, Any]:
    """Say how a version serves (champion, canary, ab, shadow, retired); the model view after."""
    with ctx.uow() as uow:
        row = registry_repo.get_version(uow.conn, name, version)
        if row is None:
            model_id_or_404(uow.conn, name)
            raise NotFound(f"model {name!r} has no version {version!r}")
        registry_repo.lock_model(uow.conn, row.model_id)
        registry_repo.set_deployment(uow.conn, row.model_id, row.version_id, mode.value)
        audit_repo.append(uow.conn, actor, "deployment.changed", version, model=name, details={"mode": mode.value})
        view = _model_view(
            registry_repo.list_versions(uow.conn, name), registry_repo.active_references(uow.conn, row.model_id)
        )
        uow.commit()
    ctx.forget_versions()
    return view


def get_monitoring(ctx: ServiceContext, name: str) -> MonitoringConfig:
    """The model's monitoring settings (defaults for anything never set)."""
    with ctx.uow() as uow:
        model_id = model_id_or_404(uow.conn, name)
        return MonitoringConfig.model_validate(registry_repo.get_monitoring(uow.conn, model_id))


def set_monitoring(ctx: ServiceContext, name: str, config: MonitoringConfig, actor: Actor = SYSTEM) -> MonitoringConfig:
    with ctx.uow() as uow:
        model_id = model_id_or_404(uow.conn, name)
        _check_protected(uow.conn, name, config)
        settings = config.model_dump(mode="json")
        registry_repo.set_monitoring(uow.conn, model_id, settings)
        audit_repo.append(uow.conn, actor, "monitoring.changed", name, model=name, details=settings)
        uow.commit()
    return config
