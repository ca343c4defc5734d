"""Vector search on Milvus: Milvus Lite (a local file, installs from PyPI) or a Milvus cluster.

The same client API talks to both, so the code tested here against Milvus Lite is
the code that runs against a cluster (``VISUALSEARCH_MILVUS_URI=http://host:19530``).
One collection per (model, space); the primary key is the asset id. The manager keeps
the collection in step with the catalog incrementally, like the on-disk index: a small
state file remembers which catalog row (embedding id) each stored vector came from.
Filters arrive as allowed asset ids (resolved by the catalog) and are passed to
Milvus as a filter expression, applied during the search.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..catalog import Catalog
from .base import SearchHits, SyncProgress, VectorIndex, rank
from .exact import ExactIndex

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def client_for(uri: str) -> Any:
    """One client per URI and process (Milvus Lite allows one opener per file)."""
    from pymilvus import MilvusClient

    with _clients_lock:
        if uri not in _clients:
            _clients[uri] = MilvusClient(uri)
        return _clients[uri]


def collection_name(model_id: str, space: str) -> str:
    return "vs_" + hashlib.sha1(f"{model_id}/{space}".encode()).hexdigest()[:20]


class MilvusIndex(VectorIndex):
    kind = "milvus"

    def __init__(self, client: Any, collection: str, count: int):
        self.client = client
        self.collection = collection
        self.count = count

    def __len__(self) -> int:
        return self.count

    def _search(self, queries: np.ndarray, k: int, allow: np.ndarray | None) -> list[list[dict[str, Any]]]:
        expr = ""
        if allow is not None:
            expr = f"id in [{','.join(str(int(i)) for i in allow)}]"
        hits: list[list[dict[str, Any]]] = self.client.search(
            self.collection,
            data=[np.asarray(q, np.float32).tolist() for q in queries],
            limit=k,
            filter=expr,
            search_params={"metric_type": "COSINE"},
        )
        return hits

    def search(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, allow: np.ndarray | None = None
    ) -> SearchHits:
        if self.count == 0 or k <= 0 or (allow is not None and len(allow) == 0):
            return SearchHits(np.empty(0, np.int64), np.empty(0, np.float32))
        want = min(self.count, k + (len(exclude) if exclude else 0), 16384)
        [hits] = self._search(np.asarray(query)[None, :], want, allow)
        ids = np.array([h["id"] for h in hits], dtype=np.int64)
        scores = np.array([h["distance"] for h in hits], dtype=np.float32)  # COSINE: higher is closer
        if exclude:
            keep = ~np.isin(ids, np.fromiter(exclude, dtype=np.int64))
            ids, scores = ids[keep], scores[keep]
        return rank(ids, scores, k)

    def search_many(self, queries: np.ndarray, k: int, ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        out_ids = np.full((len(queries), k), -1, np.int64)
        out_scores = np.full((len(queries), k), -np.inf, np.float32)
        if self.count == 0:
            return out_ids, out_scores
        want = min(k, self.count)
        for start in range(0, len(queries), 256):
            for row, hits in enumerate(self._search(queries[start : start + 256], want, None)):
                out_ids[start + row, : len(hits)] = [h["id"] for h in hits]
                out_scores[start + row, : len(hits)] = [h["distance"] for h in hits]
        return out_ids, out_scores


class MilvusManager:
    """Same interface as :class:`IndexManager`, for vectors stored in Milvus."""

    def __init__(self, catalog: Catalog, uri: str, state_dir: Path, model_id: str, space: str):
        self.catalog = catalog
        self.uri = uri
        self.client = client_for(uri)
        self.model_id = model_id
        self.space = space
        self.collection = collection_name(model_id, space)
        self.state = Path(state_dir) / "milvus" / self.collection
        self._lock = threading.Lock()

    def _load_state(self) -> tuple[np.ndarray, np.ndarray]:
        try:
            return np.load(self.state / "ids.npy"), np.load(self.state / "seqs.npy")
        except FileNotFoundError:
            return np.empty(0, np.int64), np.empty(0, np.int64)

    def _save_state(self, ids: np.ndarray, seqs: np.ndarray) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        for name, arr in (("ids", ids), ("seqs", seqs)):
            tmp = self.state / f"{name}.{os.getpid()}.tmp.npy"
            np.save(tmp, arr)
            tmp.replace(self.state / f"{name}.npy")

    def _ensure_collection(self, dim: int) -> None:
        if not self.client.has_collection(self.collection):
            self.client.create_collection(
                self.collection, dimension=dim, metric_type="COSINE", auto_id=False, id_type="int"
            )

    def sync(self, progress: SyncProgress | None = None) -> dict[str, int]:
        with self._lock:
            ids, seqs = self.catalog.embedding_ids(self.model_id, self.space)
            old_ids, old_seqs = self._load_state()
            if not self.client.has_collection(self.collection):
                old_ids, old_seqs = np.empty(0, np.int64), np.empty(0, np.int64)
            old = dict(zip(old_ids.tolist(), old_seqs.tolist(), strict=True))
            fetch = [i for i, s in zip(ids.tolist(), seqs.tolist(), strict=True) if old.get(i) != s]
            removed = np.setdiff1d(old_ids, ids).tolist()
            if removed:
                self.client.delete(self.collection, ids=removed)
            done = 0
            for chunk_ids, chunk in self.catalog.vectors(self.model_id, self.space, fetch):
                self._ensure_collection(chunk.shape[1])
                self.client.upsert(
                    self.collection,
                    [{"id": int(i), "vector": v.tolist()} for i, v in zip(chunk_ids, chunk, strict=True)],
                )
                done += len(chunk_ids)
                if progress:
                    progress(done, len(fetch))
            if fetch or removed:
                self.client.flush(self.collection)
            self._save_state(ids, seqs)
            return {"added": len(fetch), "removed": len(removed), "total": int(len(ids))}

    def index(self) -> MilvusIndex:
        ids, _ = self._load_state()
        count = len(ids) if self.client.has_collection(self.collection) else 0
        return MilvusIndex(self.client, self.collection, count)

    def search(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, allow: np.ndarray | None = None
    ) -> SearchHits:
        return self.index().search(query, k, exclude=exclude, allow=allow)

    def exact(self) -> ExactIndex:
        ids, mats = [], []
        for chunk_ids, chunk in self.catalog.vectors(self.model_id, self.space):
            ids.append(chunk_ids)
            mats.append(chunk)
        if not ids:
            return ExactIndex(np.empty(0, np.int64), np.empty((0, 1), np.float32))
        all_ids = np.concatenate(ids)
        order = np.argsort(all_ids)
        return ExactIndex(all_ids[order], np.concatenate(mats)[order])

    def generation(self) -> str:
        ids, seqs = self._load_state()
        return "milvus-" + hashlib.sha1(ids.tobytes() + seqs.tobytes()).hexdigest()[:16]
