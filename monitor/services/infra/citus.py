"""Scale-out on Citus: the schema turned into the distributed layout (``monitor.db.citus``
says what goes where and why), and where each model's rows live."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.db import citus, registry_repo
from monitor.errors import MonitorError
from monitor.services.infra.context import ServiceContext


@dataclass(frozen=True)
class Layout:
    ran: list[str]  # the statements this run needed (none: it was in place)
    placements: dict[str, str]  # table -> distributed / reference / local
    workers: int


def distribute(ctx: ServiceContext) -> Layout:
    """Apply the distributed layout, in one transaction; safe to repeat. The schema must be at
    the newest migration (the caller opened the context for writing)."""
    with ctx.uow() as uow:
        if not citus.is_citus(uow.conn):
            raise MonitorError("this database has no citus extension: run CREATE EXTENSION citus on it first")
        workers = citus.worker_count(uow.conn)
        if workers == 0:
            raise MonitorError("the coordinator has no workers: add them with citus_add_node first")
        ran = citus.distribute(uow.conn)
        uow.commit()
    return Layout(ran, layout(ctx), workers)


def layout(ctx: ServiceContext) -> dict[str, str]:
    with ctx.uow() as uow:
        return dict(sorted(citus.placements(uow.conn).items()))


def model_workers(ctx: ServiceContext) -> dict[str, str]:
    """Each model's worker (host:port), where its rows of every distributed table live."""
    with ctx.uow() as uow:
        ids = {m: registry_repo.get_model_id(uow.conn, m) for m in registry_repo.list_model_names(uow.conn)}
        shards = citus.model_shards(uow.conn, [i for i in ids.values() if i is not None])
    return {m: shards[i] for m, i in ids.items() if i is not None}
