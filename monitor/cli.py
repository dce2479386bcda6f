"""The ``monitor`` command: serve, migrate, keys, secrets, maintain, scheduler, backfill, demo.

Other packages add to it through ``Command`` and ``DemoAddition`` (``dashboards.cli`` adds
``monitor dashboard`` and the demo's dashboard): ``monitor`` never imports them.

How each process opens the database (``monitor.services.bootstrap``): what writes (serve's
parent, migrate, the scheduler, backfill, keys create and revoke, secrets rotate, the demo)
migrates first, under a lock; what only reads or checks (the API workers, the dashboard, keys
list, check, maintain) checks that the schema is at the newest migration and changes nothing
on start."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.config import get_settings

if TYPE_CHECKING:
    from monitor.demo import DemoService


def _serve(args: argparse.Namespace) -> int:
    from monitor.server import pin_database_url
    from monitor.services.bootstrap import open_for_writing
    from monitor.tls import TLSConfigError, server_context

    try:
        server_context(get_settings())  # the certificate and key load, before anything starts
    except TLSConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    # uvicorn handles SIGTERM (finishing the requests in flight), then raises it again so that the
    # handler in place before it runs: with Python's default one the process dies on the spot,
    # skipping the exit hook that stops an embedded Postgres this process started. Ours exits.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    settings = pin_database_url(get_settings())
    # Migrate once here rather than racing in every worker.
    open_for_writing(settings).close()
    if args.workers <= 1:
        _run_uvicorn(args, settings)
        return 0
    # Several workers: their request-latency histograms are added up at every scrape (see
    # services.prometheus) from a directory of this server's own, emptied now, removed at the end.
    # Set before the workers start, as prometheus_client reads it when a worker imports it.
    own_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="monitor-metrics-"))
    for stale in Path(metrics_dir).glob("*.db"):
        stale.unlink()
    try:
        _run_uvicorn(args, settings)
    finally:
        if own_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _run_uvicorn(args: argparse.Namespace, settings: Any) -> None:
    import uvicorn

    from monitor.api.connections import server_options
    from monitor.logs import log_config

    uvicorn.run(
        "monitor.api.app:app_factory",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        log_level=args.log_level,
        log_config=log_config(args.log_level.upper(), settings.log_format),
        access_log=False,  # monitor.access logs each request, with its id
        **server_options(settings),  # slow and idle connections bounded
    )


def _migrate(_: argparse.Namespace) -> int:
    from monitor.db.migrate import current_revision
    from monitor.services.bootstrap import open_for_writing

    ctx = open_for_writing(get_settings())
    print(f"database at revision {current_revision(ctx.engine)}")
    ctx.close()
    return 0


def _check(_: argparse.Namespace) -> int:
    """A container healthcheck for processes without HTTP (the scheduler): the database answers and
    its schema is at the newest migration. Migrates nothing."""
    from sqlalchemy import text

    from monitor.db.engine import database_url, make_engine
    from monitor.db.migrate import current_revision, head_revision

    engine = make_engine(database_url(get_settings()), pool_size=1)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        rev = current_revision(engine)
    except Exception as exc:
        print(f"not ready: database unreachable: {type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if rev != head_revision():
        print(f"not ready: migrations not at head (at {rev})", file=sys.stderr)
        return 1
    print(f"ready: database at revision {rev}")
    return 0


def _maintain(_: argparse.Namespace) -> int:
    from monitor.services.bootstrap import open_for_reading
    from monitor.services.jobs.maintenance import run_maintenance

    ctx = open_for_reading(get_settings())
    print(run_maintenance(ctx))
    ctx.close()
    return 0


def _citus(args: argparse.Namespace) -> int:
    from monitor.errors import MonitorError
    from monitor.services.bootstrap import open_for_reading, open_for_writing
    from monitor.services.infra import citus

    settings = get_settings()
    ctx = open_for_writing(settings) if args.citus_cmd == "distribute" else open_for_reading(settings)
    try:
        if args.citus_cmd == "distribute":
            try:
                layout = citus.distribute(ctx)
            except MonitorError as exc:
                print(f"cannot distribute: {exc.message}", file=sys.stderr)
                return 1
            print(f"{len(layout.ran)} tables distributed or made reference tables, over {layout.workers} workers")
        placements = citus.layout(ctx)
        print(f"{'TABLE':<24} PLACEMENT")
        for table, kind in placements.items():
            print(f"{table:<24} {kind}")
        if args.citus_cmd == "status":
            for model, worker in citus.model_workers(ctx).items():
                print(f"model {model!r} lives on worker {worker}")
    finally:
        ctx.close()
    return 0


def _keys(args: argparse.Namespace) -> int:
    from monitor.domain.audit import Actor
    from monitor.errors import NotFound
    from monitor.services.bootstrap import open_for_reading, open_for_writing
    from monitor.services.catalog import keys

    # listing reads only: it neither migrates nor maintains anything
    settings = get_settings()
    ctx = open_for_reading(settings) if args.keys_cmd == "list" else open_for_writing(settings)
    try:
        if args.keys_cmd == "create":
            key, info = keys.create_key(ctx, args.name, [keys.Scope(s) for s in args.scope], Actor.command_line())
            print(key)
            print(
                f"# key {info['prefix']} ({', '.join(info['scopes'])}): shown once, only its hash is stored",
                file=sys.stderr,
            )
        elif args.keys_cmd == "list":
            print(f"{'PREFIX':8}  {'STATE':8}  {'SCOPES':20}  NAME")
            for k in keys.list_keys(ctx):
                state = "revoked" if k["revoked_at"] else "active"
                print(f"{k['prefix']:8}  {state:8}  {','.join(k['scopes']):20}  {k['name']}")
        elif args.keys_cmd == "revoke":
            try:
                keys.revoke_key(ctx, args.prefix, Actor.command_line())
            except NotFound as exc:
                print(exc.message, file=sys.stderr)
                return 1
            print(f"revoked {args.prefix}")
    finally:
        ctx.close()
    return 0


def _secrets(args: argparse.Namespace) -> int:
    if args.secrets_cmd == "new-key":
        from cryptography.fernet import Fernet

        print(Fernet.generate_key().decode())
        return 0
    from monitor.domain.audit import Actor
    from monitor.secret_box import SecretUnavailable
    from monitor.services.alerting.alert_config import rotate_secrets
    from monitor.services.bootstrap import open_for_writing

    ctx = open_for_writing(get_settings())
    try:
        print(f"{rotate_secrets(ctx, Actor.command_line())} receivers' secrets encrypted with the first key")
    except SecretUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        ctx.close()
    return 0


def _scheduler(args: argparse.Namespace) -> int:
    from monitor.scheduler import BackgroundWork
    from monitor.services.bootstrap import open_for_writing

    if args.status:
        return _scheduler_status(args)
    ctx = open_for_writing(get_settings())
    # SIGTERM (docker stop, Kubernetes) ends it like Ctrl-C: the job and the delivery attempt in
    # flight finish and are recorded, and the leader lock is handed over at once.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        BackgroundWork(ctx, tick_seconds=args.tick).run()
    finally:
        ctx.close()
    return 0


def _scheduler_status(args: argparse.Namespace) -> int:
    """The scheduler processes (live and dead) and who holds which model; exit 1 when a model is
    held by no live process (none is running, or they cannot keep up with the fleet)."""
    import json

    from monitor.services.bootstrap import open_for_reading
    from monitor.services.read_models.scheduler_status import as_json, render_text, scheduler_view

    ctx = open_for_reading(get_settings())
    try:
        view = scheduler_view(ctx)
    finally:
        ctx.close()
    print(json.dumps(as_json(view), indent=2) if args.json else render_text(view, all_models=args.all))
    return 1 if view.unheld or not view.live else 0


def _step(text: str) -> Any:
    """--step: 'window' (None: each window's own length) or a duration."""
    from alerts.rules import parse_duration

    if text == "window":
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _backfill(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from tqdm import tqdm

    from monitor.services.bootstrap import open_for_writing
    from monitor.services.jobs.monitoring_run import backfill

    def when(s: str) -> datetime:
        ts = datetime.fromisoformat(s)
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)

    ctx = open_for_writing(get_settings())
    try:
        with tqdm(desc=f"backfilling {args.model}", unit="window") as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            report = backfill(ctx, args.model, when(args.start), when(args.end), progress, step=args.step)
        print(f"{report.rows_summarised} predictions summarised; windows computed: {report.windows}")
    finally:
        ctx.close()
    return 0


@dataclass(frozen=True)
class Command:
    """A command another package adds to ``monitor``."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None


@dataclass(frozen=True)
class DemoAddition:
    """Something ``monitor demo`` starts beside the API, with the options it takes."""

    arguments: Callable[[argparse.ArgumentParser], None]
    service: Callable[[argparse.Namespace], DemoService]


def _demo(args: argparse.Namespace, additions: Sequence[DemoAddition]) -> int:
    from monitor.demo import run_demo

    return run_demo(
        port=args.port,
        rate=args.rate,
        duration=args.duration,
        drift_after=args.drift_after,
        label_delay=args.label_delay,
        metrics_every=args.metrics_every,
        history_hours=args.history_hours,
        keep_data=args.keep_data,
        services=[a.service(args) for a in additions],
    )


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default in its help, where it has one (not for flags, nor for options whose
    default comes from the settings: their help says which)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default in (argparse.SUPPRESS, []):
            return action.help or ""
        return super()._get_help_string(action) or ""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)


def build_parser(commands: Sequence[Command] = (), demo: Sequence[DemoAddition] = ()) -> argparse.ArgumentParser:
    """The parser of every command, with ``commands`` added and ``demo``'s options on the demo."""
    p = _Parser(prog="monitor", description="Self-hosted model monitoring service")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    s = sub.add_parser("serve", help="run the ingestion API")
    s.add_argument("--host", help="default MONITOR_HOST or 127.0.0.1")
    s.add_argument("--port", type=int, help="default MONITOR_PORT or 8000")
    s.add_argument("--workers", type=int, default=1, help="API worker processes")
    s.add_argument("--log-level", default="info", help="debug, info, warning or error")
    s.set_defaults(func=_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)
    sub.add_parser("maintain", help="create partitions ahead, apply retention").set_defaults(func=_maintain)
    sub.add_parser("check", help="exit 0 if the database answers at the newest migration (a healthcheck)").set_defaults(
        func=_check
    )

    k = sub.add_parser("keys", help="manage API keys")
    ksub = k.add_subparsers(dest="keys_cmd", required=True)
    kc = ksub.add_parser("create", help="create a key and print it (once)")
    kc.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=["ingest", "read", "data", "admin"],
        help="repeat for several scopes",
    )
    kc.add_argument("--name", default="cli", help="what the key is for, shown in keys list")
    ksub.add_parser("list", help="list keys (prefixes only)")
    kr = ksub.add_parser("revoke", help="revoke a key by its prefix")
    kr.add_argument("prefix", help="the key's prefix, as keys list shows it")
    k.set_defaults(func=_keys)

    ci = sub.add_parser("citus", help="scale out on a Citus coordinator")
    cisub = ci.add_subparsers(dest="citus_cmd", required=True)
    cisub.add_parser("distribute", help="migrate, then distribute the per-model tables by model_id (safe to repeat)")
    cisub.add_parser("status", help="where each table and each model's rows live")
    ci.set_defaults(func=_citus)

    se = sub.add_parser("secrets", help="the keys receiver secrets are encrypted with")
    sesub = se.add_subparsers(dest="secrets_cmd", required=True)
    sesub.add_parser("new-key", help="print a new key for MONITOR_SECRET_KEYS")
    sesub.add_parser("rotate", help="re-encrypt every receiver secret with the first key of MONITOR_SECRET_KEYS")
    se.set_defaults(func=_secrets)

    sc = sub.add_parser(
        "scheduler", help="compute the models' metrics on their schedules (any number of processes share the models)"
    )
    sc.add_argument("--tick", type=float, default=10.0, help="seconds between checks for due models")
    sc.add_argument("--status", action="store_true", help="print the scheduler processes and who holds which model")
    sc.add_argument("--all", action="store_true", help="with --status: every model, not only those due now")
    sc.add_argument("--json", action="store_true", help="with --status: as JSON")
    sc.set_defaults(func=_scheduler)

    b = sub.add_parser("backfill", help="compute a model's metrics for a past period")
    b.add_argument("--model", required=True, help="the model's name")
    b.add_argument("--from", dest="start", required=True, help="ISO time, e.g. 2026-11-01 (UTC unless given)")
    b.add_argument("--to", dest="end", required=True, help="ISO time")
    b.add_argument(
        "--step",
        type=_step,
        default="window",
        help="how often a window ends: 'window' (each window's length: windows tile the period) or a "
        "duration such as 1h (sliding, as the scheduler computes them) or 1d",
    )
    b.set_defaults(func=_backfill)

    d = sub.add_parser("demo", help="start everything on the embedded Postgres with demo traffic")
    d.add_argument("--port", type=int, default=None, help="API port (default MONITOR_PORT or 8000)")
    d.add_argument("--rate", type=float, default=20.0, help="predictions per second")
    d.add_argument("--duration", type=float, default=0.0, help="seconds to run (0: until Ctrl-C)")
    d.add_argument("--drift-after", type=float, default=120.0, help="seconds of traffic before drift starts")
    d.add_argument("--label-delay", type=float, default=20.0, help="mean seconds before a label arrives")
    d.add_argument("--metrics-every", type=float, default=30.0, help="seconds between metric runs")
    d.add_argument(
        "--history-hours", type=int, default=48, help="hours of past traffic computed before the live traffic starts"
    )
    d.add_argument(
        "--keep-data",
        action="store_true",
        help="reuse MONITOR_DATA_DIR's embedded database (default: a fresh one per run, removed at the end)",
    )
    for addition in demo:
        addition.arguments(d)
    d.set_defaults(func=lambda args: _demo(args, demo))

    for c in commands:
        cp = sub.add_parser(c.name, help=c.help)
        if c.arguments is not None:
            c.arguments(cp)
        cp.set_defaults(func=c.run)
    return p


# Long-running services, whose logs go to a collector: MONITOR_LOG_FORMAT (JSON lines by default).
SERVICES = {"serve", "scheduler", "dashboard"}


def setup_logging(args: argparse.Namespace) -> None:
    """JSON lines (``MONITOR_LOG_FORMAT=json``, the default) or text for the services; text for
    the commands a person runs at a terminal (keys, migrate, backfill, the demo, ...)."""
    import logging.config

    from monitor.logs import log_config

    fmt = get_settings().log_format if args.cmd in SERVICES else "text"
    logging.config.dictConfig(log_config("DEBUG" if args.verbose else "INFO", fmt))
    if args.cmd == "demo" and not args.verbose:
        # the demo's console tells its story (traffic, drift, the receivers' messages): not every
        # request and job run
        for name in ("monitor.access", "monitor.scheduler", "monitor.services", "apscheduler"):
            logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None, commands: Sequence[Command] = (), demo: Sequence[DemoAddition] = ()) -> int:
    """Run a command (``dashboards.cli.main``, the ``monitor`` console script, adds the
    dashboard's). A database whose schema is behind exits 2 saying what to run."""
    from monitor.services.bootstrap import SchemaNotAtHead

    args = build_parser(commands, demo).parse_args(argv)
    setup_logging(args)
    try:
        return int(args.func(args) or 0)
    except SchemaNotAtHead as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
