"""What one server process holds: the library, its search engine, keys, jobs and limits."""

from __future__ import annotations

import logging
import threading
import time

from ..auth import KeyStore, RateLimiter
from ..catalog import Asset
from ..config import Settings
from ..ingest.jobs import JobInfo, JobQueue
from ..library import Library
from ..search import SearchEngine
from .gates import Gate
from .schemas import AssetOut, JobOut

log = logging.getLogger("visualsearch.api")


class ServerState:
    def __init__(self, settings: Settings, *, embedder=None, loader=None, require_keys: bool = True):
        self.settings = settings
        self.library = Library(settings, embedder=embedder, loader=loader)
        self.engine = SearchEngine(self.library)
        self.keys = KeyStore(self.library.catalog)
        self.jobs = JobQueue(self.library)
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.require_keys = require_keys
        # Decodes may wait a little for a slot (a page of uploads arrives at once); fetches never
        # queue: a slow URL holds its thread for the whole fetch deadline.
        self.decodes = Gate("decoding other images", settings.max_concurrent_decodes,
                            max_waiting=4 * settings.max_concurrent_decodes, wait_seconds=10.0)
        self.fetches = Gate("fetching other URLs", settings.max_concurrent_fetches)
        self.model_error: str | None = None
        self._warm_lock = threading.Lock()
        self._warm_started = 0.0
        self._warm = self._warm_thread()

    def _warm_thread(self) -> threading.Thread:
        return threading.Thread(target=self._load_model, name="visualsearch-warmup", daemon=True)

    def start(self) -> None:
        media = self.library.media
        # Leftovers of a server that was killed: staged uploads, and stored files with no catalog row.
        media.clean_staging(older_than=0.0, keep=self.jobs.active_staging())
        removed = media.remove_orphans(self.library.catalog.known_sha256)
        if removed:
            log.info("removed %d stored file(s) that no catalog row refers to (left by a crash)", removed)
        self._warm_started = time.monotonic()
        self._warm.start()
        self.jobs.start()

    def retry_warmup(self, every: float = 5.0) -> None:
        """Try loading again after a failure (e.g. a full disk at start-up), at most every ``every`` s."""
        with self._warm_lock:
            if self.model_error is None or self._warm.is_alive() or time.monotonic() - self._warm_started < every:
                return
            self.model_error = None
            self._warm_started = time.monotonic()
            self._warm = self._warm_thread()
            self._warm.start()

    def stop(self) -> None:
        self.jobs.stop()
        self.library.close()

    def _load_model(self) -> None:
        """Load the model and indexes before the first search needs them."""
        try:
            self.library.sync_indexes()
            for space in self.library.embedder.spaces:
                self.library.indexes(space).index()
        except Exception as exc:  # reported by /readyz; searches will report it too
            log.exception("could not load the model")
            self.model_error = f"{type(exc).__name__}: {exc}"
            return
        try:  # a new model configured: re-embed in the background, search the old vectors meanwhile
            self.jobs.ensure_reembedding()
        except Exception:
            log.exception("could not start re-embedding")

    @property
    def ready(self) -> bool:
        return self.library.model_loaded and not self._warm.is_alive() and self.model_error is None

    # -- presenting ------------------------------------------------------------------
    def asset_out(self, asset: Asset, tags: list[str] | None = None) -> AssetOut:
        has_file = asset.status == "indexed"
        return AssetOut(
            id=asset.id, name=asset.name, source=asset.source, origin=asset.origin, status=asset.status,
            error=asset.error, format=asset.format, width=asset.width, height=asset.height,
            byte_size=asset.byte_size, sha256=asset.sha256, added_at=asset.added_at, tags=tags or [],
            thumbnail_url=f"/api/assets/{asset.id}/thumbnail?v={asset.sha256[:12]}" if has_file and asset.sha256 else None,
            original_url=f"/api/assets/{asset.id}/original" if has_file else None)

    def assets_out(self, assets: list[Asset]) -> list[AssetOut]:
        tags = self.library.catalog.tags_of([a.id for a in assets])
        return [self.asset_out(a, tags.get(a.id)) for a in assets]

    @staticmethod
    def job_out(job: JobInfo) -> JobOut:
        return JobOut(id=job.id, kind=job.kind, status=job.status, total=job.total, done=job.done,
                      failed=job.failed, failures=job.failures, error=job.error, created_at=job.created_at,
                      started_at=job.started_at, finished_at=job.finished_at, status_url=f"/api/jobs/{job.id}")
