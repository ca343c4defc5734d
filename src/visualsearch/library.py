"""One library: its settings, catalog, model and indexes, opened together.

The CLI (and later the API server) talk to a :class:`Library`; the parts
underneath never talk to each other except in the direction data flows.
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path

from .catalog import Catalog
from .config import Settings, default_cache_dir
from .errors import ConfigError
from .index import IndexManager
from .ingest.indexer import IndexReport, Progress, index_folder
from .ingest.media import MediaStore
from .models import SEMANTIC, Embedder, load_embedder


class Library:
    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self.settings.library_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(settings.database_url or settings.catalog_path)
        self.media = MediaStore(settings.library_dir)
        self._embedder = embedder
        # The server calls in from many threads: load the model once, and let one
        # thread at a time move the on-disk indexes to a new generation.
        self._model_lock = threading.Lock()
        self._sync_lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._model_lock:
                if self._embedder is None:
                    self._embedder = load_embedder(self.settings.model, cache_dir=default_cache_dir())
        return self._embedder

    @property
    def model_loaded(self) -> bool:
        return self._embedder is not None

    def indexes(self, space: str) -> IndexManager:
        model_id = self.embedder.model_id
        with self._model_lock:
            manager = self._managers.get(space)
            if manager is None:
                manager = self._managers[space] = self._make_manager(model_id, space)
            return manager

    def _make_manager(self, model_id: str, space: str):
        backend = self.settings.vector_backend
        if backend == "auto":
            backend = "pgvector" if self.catalog.in_database_vectors else "local"
        if backend == "pgvector":
            if not self.catalog.in_database_vectors:
                raise ConfigError("the pgvector backend needs a PostgreSQL catalog (VISUALSEARCH_DATABASE_URL)")
            from .index.pgvector import PgVectorManager

            return PgVectorManager(self.catalog, model_id, space)
        if backend == "milvus":
            from .index.milvus import MilvusManager

            uri = self.settings.milvus_uri or str(self.settings.library_dir / "milvus.db")
            return MilvusManager(self.catalog, uri, self.settings.index_dir, model_id, space)
        if backend == "local":
            return IndexManager(self.catalog, self.settings.index_dir, model_id, space, self.settings.ann_threshold)
        raise ConfigError(f"unknown vector backend {backend!r}: choose auto, local, pgvector or milvus")

    @cached_property
    def _managers(self) -> dict[str, IndexManager]:
        return {}

    @property
    def text_index(self) -> IndexManager:
        return self.indexes(SEMANTIC)

    @property
    def similarity_index(self) -> IndexManager:
        return self.indexes(self.embedder.similarity_space)

    def index_folder(self, root: Path, *, prune: bool = False, retry_failed: bool = False,
                     progress: Progress | None = None, on_plan=None) -> IndexReport:
        try:
            return index_folder(self.catalog, self.embedder, root, self.settings, prune=prune,
                                retry_failed=retry_failed, progress=progress, on_plan=on_plan)
        finally:
            # Even after Ctrl-C, what was committed becomes searchable.
            self.sync_indexes()

    def sync_indexes(self) -> None:
        spaces = self.embedder.spaces
        with self._sync_lock:
            for space in spaces:
                self.indexes(space).sync()

    def close(self) -> None:
        self.catalog.close()
