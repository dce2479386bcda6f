"""What every service function needs: settings, the engine and the process-wide caches."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine

from monitor.config import Settings
from monitor.db.engine import database_url, make_engine
from monitor.db.partitions import PartitionCache
from monitor.db.unit_of_work import UnitOfWork
from monitor.domain.fast_batch import BatchDecoder
from monitor.domain.personal_data import PersonalData
from monitor.domain.records import RecordValidator
from monitor.domain.schema import declared_schema_from_json
from monitor.secret_box import SecretBox, load_box

log = logging.getLogger(__name__)

T = TypeVar("T")
# References held per process: each is a few MB of summaries with 20 tracked segments.
REFERENCES_CACHED = 16
PLANS_CACHED = 256


@dataclass
class ServiceContext:
    settings: Settings
    engine: Engine
    partitions: PartitionCache = field(default_factory=PartitionCache)
    # Versions are immutable once registered, so a compiled validator never goes stale.
    _validators: dict[int, RecordValidator] = field(default_factory=dict)
    _decoders: dict[int, BatchDecoder | None] = field(default_factory=dict)
    _personal: dict[int, PersonalData] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # (model name, version or None for the newest) -> (expiry, version row). See resolve_cached.
    _versions: dict[tuple[str, str | None], tuple[float, Any]] = field(default_factory=dict)
    # reference id -> its summaries, most recently used last. See cached_reference.
    _references: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict)
    # version id -> (expiry, its active reference id). See active_reference.
    _active_references: dict[int, tuple[float, int | None]] = field(default_factory=dict)
    # (version id, reference id) -> what ingestion summarises into. See cached_plan.
    _plans: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict)
    _secret_box: SecretBox | None = None
    _exports: threading.BoundedSemaphore | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceContext:
        return cls(settings=settings, engine=make_engine(database_url(settings), settings.db_pool_size))

    @property
    def secrets(self) -> SecretBox:
        """What encrypts receiver secrets at rest (made on first use: the key file, when there is
        one, is read or created then)."""
        with self._lock:
            if self._secret_box is None:
                self._secret_box = load_box(self.settings)
            return self._secret_box

    def take_export_slot(self) -> bool:
        """One of the ``export_max_concurrent`` exports this process runs at once; False if all are taken."""
        with self._lock:
            if self._exports is None:
                self._exports = threading.BoundedSemaphore(self.settings.export_max_concurrent)
        return self._exports.acquire(blocking=False)

    def release_export_slot(self) -> None:
        assert self._exports is not None
        self._exports.release()

    def uow(self, *, snapshot: bool = False, session_locks: tuple[tuple[int, int], ...] = ()) -> UnitOfWork:
        return UnitOfWork(self.engine, snapshot=snapshot, session_locks=session_locks)

    def reads(self) -> UnitOfWork:
        """A unit of work that only reads, statement by statement (``UnitOfWork`` ``read_only``)."""
        return UnitOfWork(self.engine, read_only=True)

    def validator(self, version_id: int, schema: dict) -> RecordValidator:  # type: ignore[type-arg]
        with self._lock:
            v = self._validators.get(version_id)
            if v is None:
                v = self._validators[version_id] = RecordValidator(declared_schema_from_json(schema))
            return v

    def personal_data(self, version_id: int, schema: dict) -> PersonalData:  # type: ignore[type-arg]
        """What a version's schema declares personal, and how each is kept."""
        with self._lock:
            p = self._personal.get(version_id)
            if p is None:
                p = self._personal[version_id] = PersonalData.of(declared_schema_from_json(schema))
            return p

    def batch_decoder(self, version_id: int, schema: dict) -> BatchDecoder | None:  # type: ignore[type-arg]
        """The one-pass decoder for a version, or None if its schema cannot be expressed that way
        (its records then all take the full validation path)."""
        with self._lock:
            if version_id not in self._decoders:
                try:
                    self._decoders[version_id] = BatchDecoder(declared_schema_from_json(schema))
                except TypeError:
                    log.warning("no one-pass decoder for model version %s; using the full path", version_id)
                    self._decoders[version_id] = None
            return self._decoders[version_id]

    def cached_version(self, key: tuple[str, str | None]) -> Any | None:
        hit = self._versions.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def cache_version(self, key: tuple[str, str | None], row: Any) -> None:
        self._versions[key] = (time.monotonic() + self.settings.registry_cache_seconds, row)

    def active_reference(self, version_id: int, load: Callable[[], int | None]) -> int | None:
        """A version's active reference id for ingestion's summaries, from the process's cache
        for ``registry_cache_seconds``. A batch summarised against a reference replaced meanwhile
        is not lost: its hour is summarised from the log (``summary_deltas.fold``)."""
        hit = self._active_references.get(version_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        ref_id = load()
        self._active_references[version_id] = (time.monotonic() + self.settings.registry_cache_seconds, ref_id)
        return ref_id

    def forget_active_reference(self, version_id: int) -> None:
        """This process uploaded a reference for the version: its next batches use it."""
        self._active_references.pop(version_id, None)

    def forget_versions(self) -> None:
        """Called when this process registers a version, so "the newest" is right at once here."""
        self._versions.clear()

    def cached_reference(self, reference_id: int, load: Callable[[], T]) -> T:
        """A reference's summaries, read once per process: they never change after its upload
        (a new upload is a new reference). Callers must not modify what they get."""
        return self._cached(self._references, reference_id, load, REFERENCES_CACHED)

    def cached_plan(self, key: tuple[int, int], load: Callable[[], T]) -> T:
        """What a (version, reference) is summarised into at ingestion: made once per process
        (neither changes). Kept apart from the references, and more of them: every batch of every
        model needs its plan, and a plan is a fraction of its reference's size."""
        return self._cached(self._plans, key, load, PLANS_CACHED)

    def _cached(self, store: OrderedDict[Hashable, Any], key: Hashable, load: Callable[[], T], limit: int) -> T:
        with self._lock:
            if key in store:
                store.move_to_end(key)
                return store[key]  # type: ignore[no-any-return]
        loaded = load()  # outside the lock: two threads may both read it, and one result stays
        with self._lock:
            store[key] = loaded
            while len(store) > limit:
                store.popitem(last=False)
        return loaded

    def close(self) -> None:
        self.engine.dispose()
