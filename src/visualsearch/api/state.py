"""What one server process holds: the library, the services on it, and the limits of this process."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from ..auth import RateLimiter
from ..config import Settings
from ..models import Embedder
from ..services import AssetService, DuplicatesService, JobQueue, KeyService, Library, SearchService
from .gates import Gate

log = logging.getLogger("visualsearch.api")


class ServerState:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        loader: Callable[[str], Embedder] | None = None,
        require_keys: bool = True,
    ):
        self.settings = settings
        self.library = Library(settings, embedder=embedder, loader=loader, background_compaction=True)
        self.assets = AssetService(self.library)
        self.search = SearchService(self.library)
        self.duplicates = DuplicatesService(self.library)
        self.keys = KeyService(self.library.catalog)
        self.jobs = JobQueue(self.library, duplicates=self.duplicates)
        self.models = self.jobs.models
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.require_keys = require_keys
        # Decodes may wait a little for a slot (a page of uploads arrives at once); fetches never
        # queue: a slow URL holds its thread for the whole fetch deadline.
        self.decodes = Gate(
            "decoding other images",
            settings.max_concurrent_decodes,
            max_waiting=4 * settings.max_concurrent_decodes,
            wait_seconds=10.0,
        )
        self.fetches = Gate("fetching other URLs", settings.max_concurrent_fetches)
        self.model_error: str | None = None
        self._stopping = threading.Event()
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
        self._stopping.set()
        self.duplicates.close()  # a background computation of groups stops between chunks of pairs
        self.jobs.stop()
        self.library.close()

    def _load_model(self) -> None:
        """Load the model and indexes before the first search needs them."""
        try:
            self.library.sync_indexes()
            for space in self.library.embedder.spaces:
                self.library.indexes(space).index()
            self.library.embedder.warm_up()  # /readyz says ready only once a query is as fast as the next
        except Exception as exc:  # reported by /readyz; searches will report it too
            log.exception("could not load the model")
            self.model_error = f"{type(exc).__name__}: {exc}"
            return
        try:  # a new model configured: re-embed in the background, search the old vectors meanwhile
            self.jobs.ensure_reembedding()
        except Exception:
            log.exception("could not start re-embedding")
        self._fill_thumbnails()

    def _fill_thumbnails(self) -> None:
        """Previews for a library indexed without them, one at a time at low priority, so the grid
        stops waiting on first views. Runs after readiness; a server stop interrupts it."""
        try:  # Linux lowers the priority of this thread only; elsewhere it is a no-op
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        try:
            made = self.assets.fill_thumbnails(self._stopping)
            if made:
                log.info("made %d missing thumbnail(s)", made)
        except Exception:
            log.exception("could not make missing thumbnails")

    @property
    def ready(self) -> bool:
        return self.library.model_loaded and not self._warm.is_alive() and self.model_error is None
