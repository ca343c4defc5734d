"""Vector search on Milvus: Milvus Lite (a local file, installs from PyPI) or a Milvus cluster.

The same client API talks to both, so the code tested here against Milvus Lite is
the code that runs against a cluster (``VISUALSEARCH_MILVUS_URI=http://host:19530``).
One collection per (model, space); the primary key is the asset id. The manager keeps
the collection in step with the catalog incrementally, like the on-disk index: a small
state file remembers which catalog row (embedding id) each stored vector came from.

Beside each vector the collection stores the fields filters look at (source, format,
added date, tags), so a filtered search is a boolean expression that Milvus applies during
the search (:meth:`MilvusManager.search_where`), with no list of allowed ids. Tags change
without their vector, so the state also keeps a fingerprint of each asset's tags; a sync
rewrites the rows whose tags changed, and a tag-filtered search first checks that the
collection's copy of that tag is current (a tag edit is not followed by a sync).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from ..catalog import INDEXED, AssetFilter, Catalog, normalise_tag
from .base import SearchHits, SyncProgress, VectorIndex, rank
from .exact import ExactIndex

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()

#: Scalar fields stored beside each vector, for filters Milvus evaluates itself.
FILTER_FIELDS = ("source", "format", "added_at", "tags")
#: Milvus' largest VARCHAR (bytes). Paths (4,096) and URLs (2,048) are far below it.
MAX_SOURCE_BYTES = 65_535
#: Milvus' largest ARRAY; the API accepts at most 100 tags per asset.
MAX_TAGS = 4_096
#: Normalised tags are at most 64 characters (``normalise_tag``), 4 bytes each at most in UTF-8.
MAX_TAG_BYTES = 256
MAX_FORMAT_BYTES = 64
#: Milvus' largest top-k.
MAX_LIMIT = 16_384
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_STATE_VERSION = 1


def client_for(uri: str) -> Any:
    """One client per URI and process (Milvus Lite allows one opener per file)."""
    from pymilvus import MilvusClient

    with _clients_lock:
        if uri not in _clients:
            _clients[uri] = MilvusClient(uri)
        return _clients[uri]


def is_lite(uri: str) -> bool:
    """Whether ``uri`` opens Milvus Lite (a local ``.db`` file: the client's own rule)."""
    return uri.endswith(".db")


def collection_name(model_id: str, space: str) -> str:
    return "vs_" + hashlib.sha1(f"{model_id}/{space}".encode()).hexdigest()[:20]


# -- filters as Milvus expressions ---------------------------------------------------------


def string_literal(value: str) -> str | None:
    """``value`` as a double-quoted Milvus string literal, or None when it has control characters
    (or lone surrogates, which are no UTF-8 at all).

    Only the backslash and the double quote are escaped: the two escapes every Milvus parser
    reads the same way (the cluster's ANTLR grammar and Milvus Lite's tokenizer), and enough
    for the literal to end exactly where the value ends, so no value can add expression syntax.
    Control characters (a newline may not appear raw in a literal) are left to the caller's
    fallback rather than relying on further escapes.
    """
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) < 0xE000 for ch in value):
        return None
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def epoch_micros(value: datetime) -> int:
    """Microseconds since 1970 (UTC), the unit of the ``added_at`` field; naive times are UTC."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return (value - _EPOCH) // _MICROSECOND


def milvus_expression(filters: AssetFilter, tags: bool = True) -> str | None:
    """``filters`` as a Milvus boolean expression with the catalog's meaning, or None when Milvus cannot
    state it exactly.

    - prefix: ``source >= p and source < p + U+10FFFF``, the same range the catalog uses (both
      compare code points, i.e. UTF-8 bytes). Not ``like "p%"``: whether ``\\%`` and ``\\_``
      escape LIKE wildcards depends on the Milvus version (a cluster fix from 2025; Milvus Lite's
      two evaluators disagree), while a range means the same everywhere.
    - format: stored upper-cased, compared with the upper-cased value, as the catalog does.
    - added after / before: ``added_at`` in epoch microseconds, the catalog's precision.
    - tag: ``array_contains(tags, normalised tag)``.

    None for ``q`` (a case-insensitive substring of name, source or tag: Milvus has no
    case folding and does not store names), for a status other than indexed (only indexed
    assets have vectors, so "indexed" and "any" are every row), for values with control
    characters (see :func:`string_literal`), and for a tag when ``tags`` is false.
    """
    if filters.q or filters.status not in (None, INDEXED) or (filters.tag and not tags):
        return None
    parts: list[str | None] = []
    if filters.prefix:
        low, high = string_literal(filters.prefix), string_literal(filters.prefix + "\U0010ffff")
        parts.append(None if low is None else f"(source >= {low} and source < {high})")
    if filters.format:
        fmt = string_literal(filters.format.upper())
        parts.append(None if fmt is None else f"format == {fmt}")
    if filters.added_after:
        parts.append(f"added_at >= {epoch_micros(filters.added_after)}")
    if filters.added_before:
        parts.append(f"added_at < {epoch_micros(filters.added_before)}")
    if filters.tag:
        tag = string_literal(normalise_tag(filters.tag))
        parts.append(None if tag is None else f"array_contains(tags, {tag})")
    if any(p is None for p in parts):
        return None
    return " and ".join(p for p in parts if p)


def _fit(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to ``limit`` UTF-8 bytes (at a character boundary), and whether it was whole."""
    raw = text.encode()
    if len(raw) <= limit:
        return text, True
    return raw[:limit].decode(errors="ignore"), False


def row_of(
    asset_id: int, vector: np.ndarray, fields: tuple[str, str | None, datetime], tags: tuple[str, ...]
) -> tuple[dict[str, Any], bool]:
    """The Milvus row of one asset, and whether every field fit (a cut field would filter wrongly)."""
    source, fmt, added_at = fields
    source, source_fits = _fit(source, MAX_SOURCE_BYTES)
    fmt_text, format_fits = _fit((fmt or "").upper(), MAX_FORMAT_BYTES)
    kept = [_fit(t, MAX_TAG_BYTES) for t in tags[:MAX_TAGS]]
    row = {
        "id": int(asset_id),
        "vector": vector.tolist(),
        "source": source,
        "format": fmt_text,
        "added_at": epoch_micros(added_at),
        "tags": [t for t, _ in kept],
    }
    return row, source_fits and format_fits and len(tags) <= MAX_TAGS and all(ok for _, ok in kept)


def tag_fingerprints(ids: np.ndarray, snapshot: dict[int, tuple[str, ...]]) -> np.ndarray:
    """Per asset id, 64 bits of a hash of its tags (0 for none), to tell which rows' tags changed."""
    out = np.zeros(len(ids), np.int64)
    if not snapshot or not len(ids):
        return out
    tagged = np.fromiter(snapshot, dtype=np.int64, count=len(snapshot))
    tagged.sort()
    hashes = np.array(
        [
            int.from_bytes(
                hashlib.blake2b("\x1f".join(snapshot[int(i)]).encode(), digest_size=8).digest(), "little", signed=True
            )
            for i in tagged
        ],
        dtype=np.int64,
    )
    pos = np.minimum(np.searchsorted(tagged, ids), len(tagged) - 1)
    hit = tagged[pos] == ids
    out[hit] = hashes[pos[hit]]
    return out


# -- the state kept beside the collection ----------------------------------------------------


@dataclass
class SyncState:
    """What the collection holds, as of the last sync: one file, replaced atomically."""

    #: Asset ids (sorted), the embedding row each vector came from, and a hash of each asset's tags.
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    seqs: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    tag_fps: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    #: Catalog.tag_digest of every tag in the tag snapshot the rows were written from.
    digests: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    #: Assets whose source or tags did not fit Milvus' limits: filters on them go by allowed ids.
    unfit: list[int] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"version": _STATE_VERSION, "digests": self.digests, "unfit": self.unfit}
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
        with open(tmp, "wb") as f:
            np.savez(
                f,
                ids=self.ids,
                seqs=self.seqs,
                tag_fps=self.tag_fps,
                meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
            )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> SyncState | None:
        try:
            with np.load(path) as data:
                meta = json.loads(data["meta"].tobytes())
                if meta.get("version") != _STATE_VERSION:
                    return None
                return cls(
                    data["ids"],
                    data["seqs"],
                    data["tag_fps"],
                    {tag: (int(a), int(b), int(c)) for tag, (a, b, c) in meta["digests"].items()},
                    [int(i) for i in meta["unfit"]],
                )
        except FileNotFoundError:
            return None


class MilvusIndex(VectorIndex):
    kind = "milvus"

    def __init__(self, client: Any, collection: str, count: int):
        self.client = client
        self.collection = collection
        self.count = count

    def __len__(self) -> int:
        return self.count

    def _search(self, queries: np.ndarray, k: int, expr: str) -> list[list[dict[str, Any]]]:
        hits: list[list[dict[str, Any]]] = self.client.search(
            self.collection,
            data=[np.asarray(q, np.float32).tolist() for q in queries],
            limit=k,
            filter=expr,
            output_fields=["id"],  # Milvus Lite would otherwise send every field back, vectors included
            search_params={"metric_type": "COSINE"},
        )
        return hits

    def search(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, allow: np.ndarray | None = None
    ) -> SearchHits:
        if allow is not None and len(allow) == 0:
            return SearchHits(np.empty(0, np.int64), np.empty(0, np.float32))
        expr = "" if allow is None else f"id in [{','.join(str(int(i)) for i in allow)}]"
        return self.search_expr(query, k, exclude, expr)

    def search_expr(self, query: np.ndarray, k: int, exclude: set[int] | None, expr: str) -> SearchHits:
        """The ``k`` nearest vectors among the rows matching the Milvus expression ``expr`` ("" for all)."""
        if self.count == 0 or k <= 0:
            return SearchHits(np.empty(0, np.int64), np.empty(0, np.float32))
        want = min(self.count, k + (len(exclude) if exclude else 0), MAX_LIMIT)
        [hits] = self._search(np.asarray(query)[None, :], want, expr)
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
            for row, hits in enumerate(self._search(queries[start : start + 256], want, "")):
                out_ids[start + row, : len(hits)] = [h["id"] for h in hits]
                out_scores[start + row, : len(hits)] = [h["distance"] for h in hits]
        return out_ids, out_scores


class MilvusManager:
    """Same interface as :class:`IndexManager`, for vectors stored in Milvus; also a
    :class:`~.base.FilteringBackend`."""

    def __init__(self, catalog: Catalog, uri: str, state_dir: Path, model_id: str, space: str):
        self.catalog = catalog
        self.uri = uri
        self.client = client_for(uri)
        self.model_id = model_id
        self.space = space
        self.collection = collection_name(model_id, space)
        self.state_dir = Path(state_dir) / "milvus" / self.collection
        self.state_file = self.state_dir / "state.npz"
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int, int], SyncState | None] | None = None
        #: Whether tag conditions are evaluated by Milvus. Not by Milvus Lite, which evaluates
        #: ``array_contains`` row by row in Python: 630-850 ms a search at 20,000 vectors, against
        #: 35-70 ms with the catalog's allowed ids (benchmarks/filtered_search.py --milvus 20000).
        #: A cluster evaluates it natively. The other fields are faster in Milvus Lite too.
        self.tags_in_milvus = not is_lite(uri)
        #: Whether the collection has the filter fields (None: not checked yet in this process).
        self._has_fields: bool | None = None
        self._loaded = False

    # -- state and collection ------------------------------------------------------------
    def _state(self) -> SyncState | None:
        """The state file, read again only when it changed (searches read it every time)."""
        try:
            st = self.state_file.stat()
        except FileNotFoundError:
            return None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._cached
        if cached is None or cached[0] != key:
            cached = self._cached = (key, SyncState.load(self.state_file))
        return cached[1]

    def _schema(self, dim: int) -> tuple[Any, Any]:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("source", DataType.VARCHAR, max_length=MAX_SOURCE_BYTES)
        schema.add_field("format", DataType.VARCHAR, max_length=MAX_FORMAT_BYTES)
        schema.add_field("added_at", DataType.INT64)
        schema.add_field(
            "tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_TAGS, max_length=MAX_TAG_BYTES
        )
        index = self.client.prepare_index_params()
        index.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
        return schema, index

    def _ensure_collection(self, dim: int) -> None:
        if not self.client.has_collection(self.collection):
            schema, index = self._schema(dim)
            self.client.create_collection(self.collection, schema=schema, index_params=index)
            self._has_fields, self._loaded = True, False

    def _collection_has_fields(self) -> bool:
        """Whether the collection exists with the filter fields (checked once per process)."""
        if self._has_fields is None:
            if not self.client.has_collection(self.collection):
                return False
            names = {f["name"] for f in self.client.describe_collection(self.collection)["fields"]}
            self._has_fields = set(FILTER_FIELDS) <= names
        return self._has_fields

    def _drop_outdated(self) -> None:
        """A collection made before the filter fields existed is dropped, for a full re-sync to rebuild."""
        if self.client.has_collection(self.collection) and not self._collection_has_fields():
            self.client.drop_collection(self.collection)
            self.state_file.unlink(missing_ok=True)
            for old in ("ids.npy", "seqs.npy"):  # the state files of that version
                (self.state_dir / old).unlink(missing_ok=True)
            self._has_fields, self._loaded = None, False

    def _ensure_loaded(self) -> None:
        """Load the collection for search: Milvus Lite opens every collection released."""
        if not self._loaded:
            if self.client.has_collection(self.collection):
                state = self.client.get_load_state(self.collection).get("state")
                if getattr(state, "name", str(state)) != "Loaded":
                    self.client.load_collection(self.collection)
                self._loaded = True

    # -- sync ----------------------------------------------------------------------------
    def sync(self, progress: SyncProgress | None = None) -> dict[str, int]:
        with self._lock:
            return self._sync(progress)

    def _sync(self, progress: SyncProgress | None) -> dict[str, int]:
        """Write the rows whose vector or tags changed and delete the rows of removed assets.

        The tags are read once (one snapshot) and used for everything recorded: the rows written,
        their fingerprints and the per-tag digests. So a digest that still matches the catalog
        means that the collection's copy of that tag is current.
        """
        self._drop_outdated()
        ids, seqs = self.catalog.embedding_ids(self.model_id, self.space)
        tags = self.catalog.tag_snapshot()
        fps = tag_fingerprints(ids, tags)
        old = self._state() if self.client.has_collection(self.collection) else None
        old = old or SyncState()
        fetch = ids[_changed(old, ids, seqs, fps)].tolist()
        removed = np.setdiff1d(old.ids, ids).tolist()
        if removed:
            self.client.delete(self.collection, ids=removed)
        unfit = set(old.unfit) - set(removed) - set(fetch)
        done = 0
        for chunk_ids, chunk in self.catalog.vectors(self.model_id, self.space, fetch):
            self._ensure_collection(chunk.shape[1])
            fields = self.catalog.filter_fields(chunk_ids.tolist())
            rows = []
            for asset_id, vector in zip(chunk_ids.tolist(), chunk, strict=True):
                if asset_id not in fields:  # removed meanwhile: the next sync deletes it
                    continue
                row, fits = row_of(asset_id, vector, fields[asset_id], tags.get(asset_id, ()))
                rows.append(row)
                if not fits:
                    unfit.add(asset_id)
            if rows:
                self.client.upsert(self.collection, rows)
            done += len(chunk_ids)
            if progress:
                progress(done, len(fetch))
        if fetch or removed:
            self.client.flush(self.collection)
        SyncState(ids, seqs, fps, Catalog.tag_digests(tags), sorted(unfit)).save(self.state_file)
        return {"added": len(fetch), "removed": len(removed), "total": int(len(ids))}

    # -- search --------------------------------------------------------------------------
    def index(self) -> MilvusIndex:
        if not self.client.has_collection(self.collection):
            return MilvusIndex(self.client, self.collection, 0)
        self._ensure_loaded()
        state = self._state()
        if state is not None:
            count = len(state.ids)
        else:  # a collection from an earlier version, searchable as it is until a sync rebuilds it
            count = int(self.client.get_collection_stats(self.collection).get("row_count", 0))
        return MilvusIndex(self.client, self.collection, count)

    def search(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, allow: np.ndarray | None = None
    ) -> SearchHits:
        return self.index().search(query, k, exclude=exclude, allow=allow)

    def search_where(
        self, query: np.ndarray, k: int, exclude: set[int] | None = None, filters: AssetFilter | None = None
    ) -> SearchHits:
        """The ``k`` nearest assets matching ``filters``, the filter evaluated by Milvus during the search.

        Falls back to today's path, the allowed ids resolved by the catalog (``id in [...]``), when
        Milvus cannot state the filter exactly (see :func:`milvus_expression`: ``q``, a status other
        than indexed, values with control characters), for a tag on Milvus Lite
        (:attr:`tags_in_milvus`), when the collection predates the filter fields (the next sync
        rebuilds it), or when a stored source or tag list had to be cut. A tag filter first makes
        sure the collection's copy of that tag is current.
        """
        if filters is None or filters.is_empty():
            return self.search(query, k, exclude)
        expr = milvus_expression(filters, tags=self.tags_in_milvus)
        state = self._state()
        if expr is None or state is None or state.unfit or not self._collection_has_fields():
            return self.search(query, k, exclude, allow=self.catalog.filter_ids(filters))
        if filters.tag:
            self._ensure_tag_current(normalise_tag(filters.tag))
        return self.index().search_expr(query, k, exclude, expr)

    def _tag_current(self, tag: str) -> bool:
        state = self._state()
        recorded = state.digests.get(tag, (0, 0, 0)) if state is not None else None
        return self.catalog.tag_digest(tag) == recorded

    def _ensure_tag_current(self, tag: str) -> None:
        """Sync when ``tag`` changed since the last sync (a tag edit changes no vector, so nothing
        else syncs after it); one aggregate over the tag's catalog rows otherwise."""
        if not self._tag_current(tag):
            with self._lock:
                if not self._tag_current(tag):  # unless another search synced meanwhile
                    self._sync(None)

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
        state = self._state() or SyncState()
        return "milvus-" + hashlib.sha1(state.ids.tobytes() + state.seqs.tobytes()).hexdigest()[:16]


def _changed(old: SyncState, ids: np.ndarray, seqs: np.ndarray, fps: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are new, or whose vector (embedding row) or tags changed since ``old``."""
    if not len(old.ids) or len(old.tag_fps) != len(old.ids):
        return np.ones(len(ids), bool)
    pos = np.minimum(np.searchsorted(old.ids, ids), len(old.ids) - 1)
    changed: np.ndarray = (old.ids[pos] != ids) | (old.seqs[pos] != seqs) | (old.tag_fps[pos] != fps)
    return changed
