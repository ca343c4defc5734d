"""What one server process holds: the library, its search engine, keys, jobs and limits."""

from __future__ import annotations

import logging
import threading

from ..auth import KeyStore, RateLimiter
from ..catalog import Asset
from ..config import Settings
from ..ingest.jobs import JobInfo, JobQueue
from ..library import Library
from ..search import SearchEngine
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
        self.model_error: str | None = None
        self._warm = threading.Thread(target=self._load_model, name="visualsearch-warmup", daemon=True)

    def start(self) -> None:
        self.library.media.clean_staging(keep=self.jobs.active_staging())
        self._warm.start()
        self.jobs.start()

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
