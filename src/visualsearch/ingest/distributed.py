"""Index a folder on a Ray cluster: list here, decode in Ray tasks, embed in Ray actors, write here.

The design is in docs/scaling.md. This process (the Ray *driver*) scans the folder and plans
exactly as the local indexer does (:func:`.indexer.plan_folder`: size + mtime, and whether
this model has the file's vectors), then for each batch of ``settings.batch_size`` files:

1. a Ray task reads, decodes, fingerprints and resamples them (:func:`.pipeline.prepare`,
   the same function the local worker processes run). It returns two objects: the files'
   metadata, which comes back here, and their model inputs, which stay in Ray's object
   store until an actor reads them;
2. files whose content (sha256) the catalog already holds with this model's vectors get
   those vectors copied instead of embedded again (a renamed, copied or touched file);
3. an embedding actor embeds the rest. Each actor loads the model once, when it starts;
   they form a :class:`ray.util.ActorPool`, which hands each batch to an idle actor;
4. this process writes the batch in one transaction through :func:`.indexer.write_step`,
   the local indexer's write path.

Failures. A decode task whose worker process dies is re-run by Ray; if it keeps dying, its
files are decoded one task each, and only the file that kills its worker again is recorded
as failed (as the local pipeline does). An embedding actor whose process dies is restarted by
Ray, which loads the model again and re-runs the batch it had (``max_restarts``,
``max_task_retries``). The driver writes each batch once, when its result arrives, and the
write is keyed by path, so a re-run batch cannot add a row or a vector twice. If the driver
itself stops, the batches written so far stay, and the next run skips them.

Ray is imported only here, and only when a cluster is asked for (``pip install
'visualsearch[ray]'``). Ray's usage-stats reporting is always switched off, and a ``local``
cluster listens on loopback only. The workers must run the same visualsearch and model, and see
the folder (and the library's thumbnail folder) at the same paths: a shared filesystem.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image

from ..catalog import Catalog
from ..config import Settings
from ..errors import ConfigError, VisualSearchError
from ..models import Embedder
from ..models.ocr import ReaderOptions, reader_options
from .indexer import (
    EmbeddedBatch,
    IndexReport,
    Progress,
    _add,
    _batched,
    encode_inputs,
    model_inputs,
    plan_folder,
    write_step,
)
from .pipeline import Prepared, crashed, prepare
from .scan import FoundFile

log = logging.getLogger(__name__)

#: ``--ray local``: start a Ray cluster inside this process, on this machine only.
LOCAL = "local"
#: Seconds to reach the cluster's address before ``ray.init`` (which retries an unreachable one forever).
CONNECT_TIMEOUT = 5.0
#: Times Ray restarts an embedding actor whose process died (OOM killer, crash, lost node)...
ACTOR_MAX_RESTARTS = 4
#: ...and re-runs the batch that actor had on the restarted one.
ACTOR_MAX_TASK_RETRIES = 4
#: Re-runs of a decode task whose worker died, before its files are decoded one task each.
DECODE_MAX_RETRIES = 2
#: Object store of a ``local`` cluster: decoded batches in flight (a 32-image batch of 224 px inputs is 4.8 MB).
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20
#: Environment variables set before Ray is imported (Ray reads them at import).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
#: Ray's switch for a single-machine cluster: its processes bind to loopback, not every interface.
RAY_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"

EmbedderFactory = Callable[[], Embedder]
Inputs = np.ndarray | list[Image.Image]


# -- connecting --------------------------------------------------------------------------
def import_ray(address: str) -> Any:
    """Ray, or a one-line :class:`ConfigError` saying how to install it.

    Usage stats are switched off before the import, whatever the address: indexing must never
    reach anything but the cluster. A ``local`` cluster is made loopback-only, unless the
    variable is already set.
    """
    os.environ.update(RAY_ENV)
    if address == LOCAL:
        os.environ.setdefault(RAY_LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError:
        raise ConfigError("indexing on Ray needs the ray extra: pip install 'visualsearch[ray]'") from None
    return ray


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail in seconds, with the address in the message, when nothing listens there."""
    if address in (LOCAL, "auto"):
        return
    hostport = address.removeprefix("ray://").rsplit("/", 1)[0]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"Ray address {address!r}: use host:port, ray://host:port or local")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def check_cluster(address: str) -> None:
    """Fail fast, before any scanning or model loading: Ray missing, or nothing listening at ``address``."""
    import_ray(address)
    check_reachable(address)


class _Session:
    """This process's one connection to Ray, shared by concurrent runs (the server's job threads).

    ``ray.init`` connects the whole process, so the first run connects and the last one to
    finish disconnects. A connection made by someone else (a test, a notebook) is used and left open.
    """

    lock = threading.Lock()
    users = 0
    owned = False


@contextmanager
def ray_session(address: str) -> Iterator[Any]:
    """Connect to (or, for ``local``, start) the cluster at ``address`` for the duration of the block."""
    ray = import_ray(address)
    with _Session.lock:
        if _Session.users == 0 and not ray.is_initialized():
            _connect(ray, address)
            _Session.owned = True
        _Session.users += 1
    try:
        yield ray
    finally:
        with _Session.lock:
            _Session.users -= 1
            if _Session.users == 0 and _Session.owned:
                _Session.owned = False
                ray.shutdown()


def _connect(ray: Any, address: str) -> None:
    """``ray.init`` for ``address``: quiet (progress is ours to show), without a dashboard for ``local``."""
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address == LOCAL:
            ray.init(
                address="local",
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                _node_ip_address="127.0.0.1",
                **quiet,
            )
        else:
            check_reachable(address)
            ray.init(address=address, **quiet)
    except VisualSearchError:
        raise
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
        where = "start a local Ray cluster" if address == LOCAL else f"connect to the Ray cluster at {address}"
        raise ConfigError(f"cannot {where}: {_cause(exc)}") from None


# -- the remote parts (plain functions and classes; made remote where used) --------------
def decode_batch(
    files: list[FoundFile],
    limits: dict[str, int],
    preprocessor: Callable[[Image.Image], np.ndarray] | None,
    fingerprints: bool,
    thumbnails: Path | None,
    ocr: ReaderOptions | None = None,
) -> tuple[list[Prepared], Inputs | None]:
    """Ray task: :func:`.pipeline.prepare` each file; (metadata without pixels, model inputs of the good ones)."""
    prepared = [
        prepare(f, preprocessor=preprocessor, fingerprints=fingerprints, thumbnails=thumbnails, ocr=ocr, **limits)
        for f in files
    ]
    good = [p for p in prepared if p.error is None]
    inputs = model_inputs(good) if good else None
    for p in prepared:
        p.image, p.model_input = None, None
    return prepared, inputs


class EmbedWorker:
    """Ray actor: one model, loaded once when the actor starts, embedding batch after batch."""

    def __init__(self, factory: EmbedderFactory):
        self.embedder = factory()
        # Load the weights now (models load lazily), so a broken model fails the start, not a batch.
        self.embedder.encode_images([Image.new("RGB", (64, 64))])

    def model_id(self) -> str:
        return self.embedder.model_id

    def embed(
        self, key: int, inputs: Inputs, keep: list[int] | None
    ) -> tuple[int, dict[str, np.ndarray] | None, str, float]:
        """(key, vectors or None, why not, seconds) for rows ``keep`` of ``inputs`` (all when None).

        Never raises for a bad batch: the driver records its files as failed, as the local
        indexer does, instead of losing the run.
        """
        started = time.perf_counter()
        if keep is not None:
            inputs = inputs[keep] if isinstance(inputs, np.ndarray) else [inputs[i] for i in keep]
        try:
            vectors = encode_inputs(self.embedder, inputs)
        except Exception as exc:
            return key, None, f"embedding failed: {exc}", time.perf_counter() - started
        return key, vectors, "", time.perf_counter() - started


# -- the driver ---------------------------------------------------------------------------
@dataclass
class _Batch:
    """One batch on its way through the cluster."""

    key: int
    files: list[FoundFile]
    meta_ref: Any
    inputs_ref: Any
    prepared: list[Prepared] = field(default_factory=list)
    #: Decoded files to embed, in the order of the rows of ``inputs_ref``'s selection.
    fresh: list[Prepared] = field(default_factory=list)
    #: Decoded files whose content already has this model's vectors, with them.
    reused: list[tuple[Prepared, dict[str, np.ndarray]]] = field(default_factory=list)
    failed: list[tuple[Prepared, str]] = field(default_factory=list)
    keep: list[int] | None = None


class RayIndexer:
    """Run :func:`index_files_on_ray`: decode tasks ahead, one batch per idle actor, writes here."""

    def __init__(
        self,
        ray: Any,
        catalog: Catalog,
        embedder: Embedder,
        settings: Settings,
        report: IndexReport,
        *,
        factory: EmbedderFactory,
        workers: int | None = None,
        thumbnails: Path | None = None,
    ):
        self.ray, self.catalog, self.embedder, self.settings, self.report = ray, catalog, embedder, settings, report
        self.factory = factory
        self.thumbnails = thumbnails
        self.preprocessor = embedder.image_preprocessor()
        self.workers = workers or default_workers(ray)
        self.actors: list[Any] = []
        self.in_flight: dict[int, _Batch] = {}
        self.submitted = self.done = self.total = 0
        self.progress: Progress | None = None

    # -- setting up ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the embedding actors and wait until each has loaded the model."""
        ray = self.ray
        cpus = actor_cpus(ray.cluster_resources().get("CPU", 1.0), self.workers)
        actor_class = ray.remote(
            num_cpus=cpus, max_restarts=ACTOR_MAX_RESTARTS, max_task_retries=ACTOR_MAX_TASK_RETRIES
        )(EmbedWorker)
        self.actors = [
            actor_class.options(scheduling_strategy="SPREAD").remote(self.factory) for _ in range(self.workers)
        ]
        try:
            ids = set(ray.get([a.model_id.remote() for a in self.actors]))
        except ray.exceptions.RayError as exc:
            raise VisualSearchError(f"the embedding workers could not load the model: {_cause(exc)}") from None
        if ids != {self.embedder.model_id}:
            raise VisualSearchError(
                f"the Ray workers load {', '.join(sorted(ids))}, not {self.embedder.model_id}: "
                "install the same visualsearch and model on every node"
            )
        self._decode = ray.remote(num_returns=2, max_retries=DECODE_MAX_RETRIES)(decode_batch)
        self._decode_one = ray.remote(num_returns=2, max_retries=0)(decode_batch)

    def stop(self) -> None:
        """Kill the actors (their CPUs go back to the cluster); pending tasks end with the driver's job."""
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []

    # -- running ------------------------------------------------------------------------
    def run(self, files: list[FoundFile], progress: Progress | None = None) -> None:
        """Decode up to ``window`` batches ahead, give each to an idle actor, write results as they come."""
        from ray.util import ActorPool

        self.total, self.progress = len(files), progress
        pool: Any = ActorPool(self.actors)  # ActorPool's methods are untyped
        batches = _batched(files, self.settings.batch_size)
        decoding: deque[_Batch] = deque()
        window = max(4, 2 * (self.workers + int(self.ray.cluster_resources().get("CPU", 1))))
        try:
            while True:
                while len(decoding) + len(self.in_flight) < window and (chunk := next(batches, None)):
                    decoding.append(self._submit_decode(chunk))
                if decoding:
                    self._drain(pool, block=False)
                    self._embed(pool, self._decoded(decoding.popleft()))
                elif pool.has_next():
                    self._drain(pool, block=True)
                else:
                    return
        finally:  # stopped early (Ctrl-C, an error): leave no decode work behind on a shared cluster
            for batch in decoding:
                with suppress(Exception):  # already finished, or the connection is going
                    self.ray.cancel(batch.meta_ref)

    def _embed(self, pool: Any, batch: _Batch) -> None:
        """Give a decoded batch to an actor (waiting for one if all are busy); write it if nothing is left to embed."""
        if not batch.fresh:
            self._write(batch, None)
        elif pool.has_free():
            self._dispatch(pool, batch)
        else:  # take a result first, give its actor this batch, then write the result while the actor works
            result = self._next(pool)
            self._dispatch(pool, batch)
            self._finish(result)

    def _submit_decode(self, files: list[FoundFile]) -> _Batch:
        meta_ref, inputs_ref = self._decode.remote(files, *self._decode_args())
        self.submitted += 1
        return _Batch(self.submitted, files, meta_ref, inputs_ref)

    def _decode_args(
        self,
    ) -> tuple[dict[str, int], Callable[[Image.Image], np.ndarray] | None, bool, Path | None, ReaderOptions | None]:
        """The arguments of :func:`decode_batch` after the files: limits, preprocessor, fingerprints, thumbnails,
        text reading."""
        return self.settings.decode_limits, self.preprocessor, True, self.thumbnails, reader_options(self.settings)

    def _decoded(self, batch: _Batch) -> _Batch:
        """Wait for a batch's decoding; split it into failed, reused and to-embed files."""
        t = time.perf_counter()
        try:
            batch.prepared = self.ray.get(batch.meta_ref)
        except self.ray.exceptions.RayError as exc:
            log.warning("decoding a batch failed on the cluster (%s); decoding its files one by one", _cause(exc))
            self._discard(batch.inputs_ref)
            batch.prepared, batch.inputs_ref = self._isolate(batch.files)
        _add(self.report.timings, "wait", time.perf_counter() - t)
        for p in batch.prepared:
            for stage, seconds in p.timings.items():
                _add(self.report.timings, stage, seconds)
        good = [p for p in batch.prepared if p.error is None]
        batch.failed = [(p, p.error) for p in batch.prepared if p.error is not None]
        known = known_vectors(self.catalog, self.embedder.model_id, list(self.embedder.spaces), good)
        keep = [n for n, p in enumerate(good) if p.sha256 not in known]
        batch.fresh = [good[n] for n in keep]
        batch.reused = [(p, known[p.sha256]) for p in good if p.sha256 in known]
        batch.keep = None if len(keep) == len(good) else keep
        return batch

    def _isolate(self, files: list[FoundFile]) -> tuple[list[Prepared], Any]:
        """Decode ``files`` one task each (no retries); a file whose task dies is recorded as crashed."""
        refs = [self._decode_one.remote([f], *self._decode_args()) for f in files]
        prepared: list[Prepared] = []
        inputs: list[Inputs] = []
        for f, (meta_ref, inputs_ref) in zip(files, refs, strict=True):
            try:
                [p] = self.ray.get(meta_ref)
                if p.error is None:
                    inputs.append(self.ray.get(inputs_ref))
            except self.ray.exceptions.RayError:
                self._discard(inputs_ref)
                p = crashed(f)
            prepared.append(p)
        merged: Inputs | None = None
        if inputs and isinstance(inputs[0], np.ndarray):
            merged = np.concatenate(cast(list[np.ndarray], inputs))
        elif inputs:
            merged = [image for part in cast(list[list[Image.Image]], inputs) for image in part]
        return prepared, self.ray.put(merged)

    def _discard(self, ref: Any) -> None:
        """Read a failed task's other result, so Ray does not report its error as never handled."""
        with suppress(self.ray.exceptions.RayError):
            self.ray.get(ref)

    def _dispatch(self, pool: Any, batch: _Batch) -> None:
        self.in_flight[batch.key] = batch
        pool.submit(lambda actor, b: actor.embed.remote(b.key, b.inputs_ref, b.keep), batch)

    def _next(self, pool: Any, timeout: float | None = None) -> tuple[int, dict[str, np.ndarray] | None, str, float]:
        t = time.perf_counter()
        try:
            result: tuple[int, dict[str, np.ndarray] | None, str, float] = pool.get_next_unordered(timeout=timeout)
            return result
        except self.ray.exceptions.RayActorError as exc:
            raise VisualSearchError(
                f"an embedding worker died {ACTOR_MAX_RESTARTS + 1} times ({_cause(exc)}); the images written so "
                "far are kept: run again to continue"
            ) from None
        finally:
            _add(self.report.timings, "wait", time.perf_counter() - t)

    def _drain(self, pool: Any, *, block: bool) -> None:
        """Write the results that are ready (``block``: wait for at least one)."""
        while pool.has_next():
            try:
                result = self._next(pool, None if block else 0)
            except TimeoutError:
                return
            self._finish(result)
            block = False

    def _finish(self, result: tuple[int, dict[str, np.ndarray] | None, str, float]) -> None:
        """Write the batch an actor finished; if the model failed on it, its files are recorded as failed."""
        key, vectors, error, seconds = result
        _add(self.report.timings, "model", seconds)
        batch = self.in_flight.pop(key)
        if vectors is None:
            batch.failed += [(p, error) for p in batch.fresh]
            batch.fresh = []
        self._write(batch, vectors)

    def _write(self, batch: _Batch, vectors: dict[str, np.ndarray] | None) -> None:
        """Store a batch: embedded files first, then those whose vectors were copied, in one transaction."""
        good = batch.fresh + [p for p, _ in batch.reused]
        merged: dict[str, np.ndarray] = {}
        for space in self.embedder.spaces if good else ():
            rows: list[np.ndarray] = []
            if batch.fresh:
                assert vectors is not None  # a batch the model failed on has no fresh files left
                rows.append(vectors[space])
            if batch.reused:
                rows.append(np.stack([v[space] for _, v in batch.reused]))
            merged[space] = np.concatenate(rows)
        step = EmbeddedBatch(batch.prepared, good, merged, batch.failed)
        write_step(self.catalog, self.embedder.model_id, step, self.report)
        self.report.reused += len(batch.reused)
        self.done += len(batch.files)
        if self.progress:
            self.progress(self.done, self.total)


def default_workers(ray: Any) -> int:
    """One embedding actor per node: a model's runtime already uses every core of its machine."""
    return max(1, sum(1 for node in ray.nodes() if node.get("Alive")))


def actor_cpus(cluster_cpus: float, workers: int) -> float:
    """CPUs each actor reserves: one, or less when that would leave no CPU for the decode tasks.

    Ray schedules by these numbers, not by real use; actors holding every CPU would leave
    the decode tasks waiting forever.
    """
    return min(1.0, max(0.0, (cluster_cpus - 1) / workers))


def known_vectors(
    catalog: Catalog, model_id: str, spaces: list[str], decoded: list[Prepared]
) -> dict[str, dict[str, np.ndarray]]:
    """sha256 -> {space: vector} for decoded files whose content the catalog has with this model's vectors.

    Resuming by content: a file that was renamed, copied or only touched has the same bytes as
    an asset already embedded, and the model would give the same vectors again.
    """
    digests = sorted({p.sha256 for p in decoded})
    known = catalog.known_sha256(digests) if digests else set()
    by_id: dict[int, str] = {}
    for digest in sorted(known):
        asset = catalog.find_by_sha256(digest)
        if asset is not None:
            by_id[asset.id] = digest
    if not by_id:
        return {}
    found: dict[str, dict[str, np.ndarray]] = {}
    for space in spaces:
        for ids, matrix in catalog.vectors(model_id, space, list(by_id)):
            for asset_id, vector in zip(ids, matrix, strict=True):
                found.setdefault(by_id[int(asset_id)], {})[space] = vector
    return {digest: vectors for digest, vectors in found.items() if len(vectors) == len(spaces)}


def _cause(exc: BaseException) -> str:
    """One line from a Ray error, whose text is a long report: the exception it ends with, or its first line."""
    lines = [line for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[-1] if _RAISED.match(lines[-1]) else lines[0]


#: Colour codes Ray puts in error reports, and the ``SomeError: message`` line a traceback ends with.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RAISED = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def index_files_on_ray(
    ray: Any,
    catalog: Catalog,
    embedder: Embedder,
    files: list[FoundFile],
    settings: Settings,
    report: IndexReport,
    *,
    factory: EmbedderFactory,
    workers: int | None = None,
    progress: Progress | None = None,
    thumbnails: Path | None = None,
) -> None:
    """:func:`.indexer.index_files` on a connected Ray cluster (see :func:`ray_session`)."""
    started = time.perf_counter()
    indexer = RayIndexer(
        ray, catalog, embedder, settings, report, factory=factory, workers=workers, thumbnails=thumbnails
    )
    try:
        t = time.perf_counter()
        indexer.start()
        _add(report.timings, "start", time.perf_counter() - t)
        indexer.run(files, progress)
    finally:
        indexer.stop()
        report.seconds += time.perf_counter() - started


def index_folder_on_ray(
    catalog: Catalog,
    embedder: Embedder,
    root: Path,
    settings: Settings,
    *,
    factory: EmbedderFactory,
    address: str | None = None,
    workers: int | None = None,
    prune: bool = False,
    retry_failed: bool = False,
    progress: Progress | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    thumbnails: Path | None = None,
) -> IndexReport:
    """:func:`.indexer.index_folder` with the decoding and the model on the Ray cluster at ``address``.

    ``factory`` builds the model in each actor (it is pickled to the cluster). The cluster is
    only contacted when there is something to index; an address nobody listens on fails first.
    """
    address = address or settings.ray_address
    if not address:
        raise ConfigError("no Ray address: pass --ray ADDRESS or set VISUALSEARCH_RAY_ADDRESS")
    if workers is not None and workers < 1:
        raise ConfigError("the number of Ray workers must be at least 1")
    check_cluster(address)
    report, todo = plan_folder(catalog, embedder, root, prune=prune, retry_failed=retry_failed)
    if on_plan:
        on_plan(len(todo), report.unchanged)
    if todo:
        with ray_session(address) as ray:
            index_files_on_ray(
                ray,
                catalog,
                embedder,
                todo,
                settings,
                report,
                factory=factory,
                workers=workers,
                progress=progress,
                thumbnails=thumbnails,
            )
    return report
