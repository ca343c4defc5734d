"""One library: its settings, catalog, media store, model and indexes, opened together.

:class:`Library` is the composition root the services share: it opens the engine
parts of one library and hands them out, and it owns the two things that must be
decided in one place for every surface: which model is active (a switch made by
another process is noticed within seconds) and which vector backend serves each
(model, space).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog import Catalog
from ..config import Settings, default_cache_dir
from ..errors import ConfigError, ModelPinned
from ..index import IndexBackend, IndexManager, open_backend
from ..ingest.indexer import IndexReport, Progress, index_folder
from ..ingest.media import MediaStore
from ..models import SEMANTIC, Embedder, load_embedder
from ..models.ocr import check_available

#: Catalog key of the model whose vectors searches use: {"name": ..., "model_id": ...}.
ACTIVE_MODEL = "active_model"
#: Catalog key of the model chosen with ``visualsearch models use`` (or the API): {"name": ...}.
#: It is the requested model unless the settings name one (``VISUALSEARCH_MODEL`` / ``--model``).
REQUESTED_MODEL = "requested_model"
#: How often a process re-reads the active model, to notice a switch made by another process.
ACTIVE_MODEL_REFRESH_SECONDS = 5.0

log = logging.getLogger(__name__)


@dataclass
class ModelChange:
    """The library's vectors are from ``from_model``; ``to_model`` was asked for and is being embedded."""

    from_name: str
    from_model: str
    to_name: str
    to_model: str
    done: int
    total: int


class Library:
    """Settings, catalog, models and indexes of one library.

    Two models matter when the configured model changes. The *requested* model
    (``settings.model``) is what the library should use; the *active* model
    (recorded in the catalog, shared by every process) is the one whose vectors
    are complete, and it serves searches and new images until re-embedding
    (:mod:`visualsearch.ingest.reembed`) has given every image a vector from the
    requested model and built its indexes. Then the active model switches in one
    catalog write.
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        loader: Callable[[str], Embedder] | None = None,
        background_compaction: bool = False,
    ):
        self.settings = settings
        if settings.ocr:
            check_available()  # a missing OCR extra is said now, not as a failure on every file
        #: Fold index deltas into a new base in a background thread (a server, which keeps
        #: answering meanwhile) or within the sync (the CLI, whose process ends right after).
        self.background_compaction = background_compaction
        self.settings.library_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(settings.catalog_url)
        self.media = MediaStore(settings.library_dir)
        self._requested = embedder
        # A plain int in the closure, not the settings: the loader is pickled to Ray workers, and
        # the settings carry the database URL with its password.
        threads = settings.model_threads
        self._loader = loader or (lambda name: load_embedder(name, cache_dir=default_cache_dir(), threads=threads))
        self._active: Embedder | None = None
        self._active_checked = 0.0
        # The server calls in from many threads: load the model once, and let one
        # thread at a time move the on-disk indexes to a new generation.
        self._model_lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self._managers: dict[tuple[str, str], IndexBackend] = {}
        #: A model named by the settings (or passed in) wins over the one recorded by ``models use``.
        self.model_pinned = embedder is not None or "model" in settings.model_fields_set
        self._adopt_requested()

    # -- models --------------------------------------------------------------------
    def _adopt_requested(self) -> None:
        """Follow the model recorded by ``models use``, in this process too (read again every few seconds)."""
        if self.model_pinned:
            return
        state = self.catalog.get_state(REQUESTED_MODEL)
        name = state.get("name") if state else None
        if name and name != self.settings.model:
            with self._model_lock:
                self.settings.model = name
                self._requested = None

    def check_can_request(self, name: str) -> None:
        """Raise :class:`ModelPinned` if the settings name another model (checked before any download)."""
        if self.model_pinned and name != self.settings.model:
            raise ModelPinned(
                f"the model is set to {self.settings.model} by VISUALSEARCH_MODEL (or --model), which overrides "
                f"the choice made here: unset it to use {name}"
            )

    def request_model(self, name: str) -> Embedder:
        """Make ``name`` the requested model (it must load); re-embedding then moves the library onto it."""
        self.check_can_request(name)
        embedder = self._loader(name)
        embedder.spaces  # noqa: B018  # loads the weights now, so a broken download fails here, not mid-way
        with self._model_lock:
            self.catalog.set_state(REQUESTED_MODEL, {"name": name})
            self.settings.model = name
            self._requested = embedder
            self._active_checked = 0.0  # look at the active model again on the next search
        return embedder

    @property
    def active_model_name(self) -> str:
        state = self.catalog.get_state(ACTIVE_MODEL)
        return str(state["name"]) if state else self.settings.model

    @property
    def requested_embedder(self) -> Embedder:
        """The configured model (``settings.model``, or the one passed in)."""
        if self._requested is None:
            with self._model_lock:
                if self._requested is None:
                    self._requested = self._loader(self.settings.model)
        return self._requested

    @property
    def embedder(self) -> Embedder:
        """The active model: the one searches and newly added images use right now."""
        active = self._active
        if active is None or time.monotonic() - self._active_checked > ACTIVE_MODEL_REFRESH_SECONDS:
            with self._model_lock:
                active = self._active
                if active is None or time.monotonic() - self._active_checked > ACTIVE_MODEL_REFRESH_SECONDS:
                    active = self._refresh_active()
        return active

    def _refresh_active(self) -> Embedder:
        self._adopt_requested()
        requested = self.requested_embedder
        state = self.catalog.get_state(ACTIVE_MODEL)
        if state is None:  # a new library (or one from before models were recorded)
            state = {"name": self.settings.model, "model_id": requested.model_id}
            self.catalog.set_state(ACTIVE_MODEL, state)
        if state["model_id"] == requested.model_id:
            active = requested
        elif self._active is not None and self._active.model_id == state["model_id"]:
            active = self._active
        else:
            active = self._load_previous(state, requested)
        if self._active is not None and active is not self._active:
            self._managers.clear()
        self._active, self._active_checked = active, time.monotonic()
        return active

    def _load_previous(self, state: dict[str, Any], requested: Embedder) -> Embedder:
        try:
            previous = self._loader(state["name"])
            if previous.model_id != state["model_id"]:
                raise ConfigError(f"{state['name']} now loads as {previous.model_id}, not {state['model_id']}")
            return previous
        except Exception as exc:  # the old model is gone: serve what is re-embedded so far
            log.warning(
                "cannot load the library's previous model %s (%s); searching with %s while re-embedding",
                state["model_id"],
                exc,
                requested.model_id,
            )
            return requested

    @property
    def model_loaded(self) -> bool:
        return self._active is not None

    def model_change(self) -> ModelChange | None:
        """What re-embedding still has to do, or None when the requested model is the active one."""
        requested = self.requested_embedder
        state = self.catalog.get_state(ACTIVE_MODEL) or {"name": self.settings.model, "model_id": requested.model_id}
        if state["model_id"] == requested.model_id:
            return None
        total = self.catalog.counts().get("indexed", 0)
        done = min(self.catalog.count_with_embeddings(requested.model_id, space) for space in requested.spaces)
        return ModelChange(state["name"], state["model_id"], self.settings.model, requested.model_id, done, total)

    def switch_model(self, target: Embedder) -> bool:
        """Make ``target`` (whose vectors re-embedding just completed) the active model.

        Only if it is still the requested one: if another model was asked for meanwhile,
        switching to it would leave searches on a model with no vectors. Returns whether
        it switched; if not, the caller re-embeds for the new request.
        """
        with self._model_lock:
            self._adopt_requested()
            requested = self.requested_embedder
            if requested.model_id != target.model_id:
                return False
            self.catalog.set_state(ACTIVE_MODEL, {"name": self.settings.model, "model_id": target.model_id})
            self._active, self._active_checked = requested, time.monotonic()
            self._managers = {k: m for k, m in self._managers.items() if k[0] == target.model_id}
            return True

    # -- indexes -------------------------------------------------------------------
    def indexes(self, space: str, embedder: Embedder | None = None) -> IndexBackend:
        """The vector index of ``space`` for the active model (or for ``embedder``)."""
        model_id = (embedder or self.embedder).model_id
        with self._model_lock:
            manager = self._managers.get((model_id, space))
            if manager is None:
                manager = self._managers[(model_id, space)] = open_backend(self.catalog, self.settings, model_id, space)
                if isinstance(manager, IndexManager):
                    manager.background = self.background_compaction
            return manager

    @property
    def index_thumbnails(self) -> Path | None:
        """Where indexing writes previews in its decode pass; None when ``thumbnails_at_index`` is off."""
        return self.media.thumbnails if self.settings.thumbnails_at_index else None

    @property
    def text_index(self) -> IndexBackend:
        return self.indexes(SEMANTIC)

    @property
    def similarity_index(self) -> IndexBackend:
        return self.indexes(self.embedder.similarity_space)

    def index_folder(
        self,
        root: Path,
        *,
        prune: bool = False,
        retry_failed: bool = False,
        progress: Progress | None = None,
        on_plan: Callable[[int, int], None] | None = None,
        ray_workers: int | None = None,
    ) -> IndexReport:
        """Index ``root``: in this process, or on the Ray cluster of ``settings.ray_address`` when set.

        ``ray_workers``: embedding actors on the cluster (default: one per node).
        """
        try:
            if self.settings.ray_address:
                return self._index_folder_on_ray(root, prune, retry_failed, progress, on_plan, ray_workers)
            return index_folder(
                self.catalog,
                self.embedder,
                root,
                self.settings,
                prune=prune,
                retry_failed=retry_failed,
                progress=progress,
                on_plan=on_plan,
                thumbnails=self.index_thumbnails,
            )
        finally:
            # Even after Ctrl-C, what was committed becomes searchable.
            self.sync_indexes()

    def _index_folder_on_ray(
        self,
        root: Path,
        prune: bool,
        retry_failed: bool,
        progress: Progress | None,
        on_plan: Callable[[int, int], None] | None,
        workers: int | None,
    ) -> IndexReport:
        """:meth:`index_folder` on Ray; each actor loads the active model by name, as this process did."""
        from ..ingest.distributed import check_cluster, index_folder_on_ray  # Ray only when a cluster is set

        check_cluster(self.settings.ray_address or "")  # before loading the model: a typo fails in seconds
        embedder = self.embedder
        name = self.settings.model if embedder is self._requested else self.active_model_name
        return index_folder_on_ray(
            self.catalog,
            embedder,
            root,
            self.settings,
            factory=functools.partial(self._loader, name),
            workers=workers,
            prune=prune,
            retry_failed=retry_failed,
            progress=progress,
            on_plan=on_plan,
            thumbnails=self.index_thumbnails,
        )

    def sync_indexes(self, embedder: Embedder | None = None) -> None:
        """Bring the active model's (or ``embedder``'s) indexes up to date with the catalog."""
        embedder = embedder or self.embedder
        with self._sync_lock:
            for space in embedder.spaces:
                self.indexes(space, embedder).sync()

    def close(self) -> None:
        self.catalog.close()
