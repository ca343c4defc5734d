"""Folder indexing on a real Ray cluster (on loopback), into PostgreSQL + pgvector.

One local Ray cluster (2 CPUs, this machine only) serves the module. The CLI indexes
through it from another process, as a user would with ``--ray host:port``; the library
service indexes through it while a test kills an embedding actor's process mid-batch;
a server folder job uses it when ``ray_address`` is set. After each run every image must be
in the catalog exactly once, with exactly one vector per space.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from tests.support.images import gradient_image

pytestmark = pytest.mark.slow  # a Ray cluster, PostgreSQL, the real model, a CLI subprocess

#: Ray reads these at import: no usage reports, and a cluster bound to loopback only.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


@pytest.fixture(scope="module", autouse=True)
def _ray_env():
    """Set before any test here imports Ray (the CLI subprocess inherits them too)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in RAY_ENV.items():
            mp.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def ray_cluster(_ray_env, embedder) -> Any:
    """A local Ray cluster with 2 CPUs on 127.0.0.1; its GCS address. Shut down after the module."""
    ray = pytest.importorskip("ray")
    from ray._private import ray_constants

    assert not ray_constants.ENABLE_RAY_CLUSTER, "Ray was imported before the loopback switch was set"
    embedder.encode_images([Image.new("RGB", (64, 64))])  # the model's ONNX export is in the cache before actors start
    context = ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=300 * 2**20,
        _node_ip_address="127.0.0.1",
        logging_level="ERROR",
        log_to_driver=False,
    )
    address = context.address_info["gcs_address"]
    try:
        assert address.startswith("127.0.0.1:")
        _assert_listens_on_loopback_only()
        yield address
    finally:
        ray.shutdown()


def _assert_listens_on_loopback_only() -> None:
    psutil = pytest.importorskip("psutil")
    ours = {p.pid for p in psutil.Process().children(recursive=True)} | {os.getpid()}
    listening = [
        c.laddr.ip for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in ours
    ]
    assert listening, "found no listening socket of the Ray cluster"
    assert all(ip in LOOPBACK for ip in listening), listening


def _pictures(folder: Path, count: int, start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        gradient_image(i, (160, 120)).save(folder / f"p{i:03d}.jpg", quality=90)
    return folder


def _rows(url: str) -> dict[str, Any]:
    """What the catalog holds, counted so that a duplicate row or vector would show."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assets, sources = conn.execute(text("SELECT count(*), count(DISTINCT source) FROM assets")).one()
            by_status = dict(conn.execute(text("SELECT status, count(*) FROM assets GROUP BY status")).all())
            per_asset = conn.execute(
                text(
                    "SELECT a.id, count(e.id), count(DISTINCT e.space), count(e.vec) FROM assets a "
                    "LEFT JOIN embeddings e ON e.asset_id = a.id WHERE a.status = 'indexed' GROUP BY a.id"
                )
            ).all()
    finally:
        engine.dispose()
    return {"assets": assets, "sources": sources, "status": by_status, "vectors": {tuple(r[1:]) for r in per_asset}}


def _assert_exactly_once(url: str, indexed: int, failed: int, spaces: int) -> None:
    rows = _rows(url)
    assert rows["assets"] == rows["sources"] == indexed + failed
    assert rows["status"] == ({"indexed": indexed, "failed": failed} if failed else {"indexed": indexed})
    # every indexed asset: one vector per space, each also in pgvector's column
    assert rows["vectors"] == {(spaces, spaces, spaces)}


def _cli(*args: Any, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "visualsearch", *map(str, args)],
        capture_output=True,
        text=True,
        env=dict(os.environ, **env),
        timeout=300,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def test_cli_indexes_through_the_cluster_once_and_resumes(ray_cluster, postgres_url, embedder, tmp_path):
    folder = _pictures(tmp_path / "pictures", 40)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    env = {"VISUALSEARCH_DATABASE_URL": postgres_url, "VISUALSEARCH_BATCH_SIZE": "8"}
    library = tmp_path / "library"

    first = json.loads(_cli("index", folder, "--library", library, "--ray", ray_cluster, "--json", env=env).stdout)
    assert (first["indexed"], first["failed"], first["unchanged"]) == (40, 1, 0)
    assert "broken.jpg" in first["failures"][0][0]
    _assert_exactly_once(postgres_url, indexed=40, failed=1, spaces=len(embedder.spaces))

    # a search works on what the cluster wrote: a picture finds itself first
    found = json.loads(_cli("similar", folder / "p007.jpg", "--library", library, "--json", "-n", "3", env=env).stdout)
    assert found[0]["source"].endswith("/p007.jpg") and found[0]["score"] > 0.99

    again = json.loads(_cli("index", folder, "--library", library, "--ray", ray_cluster, "--json", env=env).stdout)
    assert (again["indexed"], again["unchanged"]) == (0, 41)
    _assert_exactly_once(postgres_url, indexed=40, failed=1, spaces=len(embedder.spaces))


def _actor_processes() -> dict[int, str]:
    """pid -> process title of this test's embedding actors (Ray titles them ``ray::EmbedWorker...``)."""
    psutil = pytest.importorskip("psutil")
    found = {}
    for p in psutil.Process().children(recursive=True):
        try:
            title = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if title.startswith("ray::EmbedWorker"):
            found[p.pid] = title
    return found


def _kill_an_actor_mid_batch(timeout: float = 10.0) -> int:
    """SIGKILL an embedding actor while it runs a batch (its title names the method then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [pid for pid, title in _actor_processes().items() if ".embed" in title]
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            return busy[0]
        time.sleep(0.005)
    raise AssertionError(f"no embedding actor was busy within {timeout} s: {_actor_processes()}")


def _library(url: str, tmp_path: Path, address: str) -> Any:
    from visualsearch.config import Settings
    from visualsearch.services import Library

    settings = Settings.from_env(tmp_path / "library", database_url=url, batch_size=8, ray_address=address)
    return Library(settings)


def test_a_killed_actor_loses_nothing_and_duplicates_nothing(ray_cluster, postgres_url, embedder, tmp_path):
    folder = _pictures(tmp_path / "pictures", 96)
    lib = _library(postgres_url, tmp_path, ray_cluster)
    killed: list[int] = []
    killer: list[threading.Thread] = []
    actors_at_end: dict[int, str] = {}

    def progress(done: int, total: int) -> None:
        # After the first batch is written the actors have the next ones. The kill is watched for
        # on another thread: polling here would hold the driver, which then hands out no new batch,
        # so once the actors finished the batches they had, none would ever be busy again.
        if not killer:
            killer.append(threading.Thread(target=lambda: killed.append(_kill_an_actor_mid_batch()), daemon=True))
            killer[0].start()
        if done == total:
            actors_at_end.update(_actor_processes())

    try:
        report = lib.index_folder(folder, progress=progress, ray_workers=2)
        killer[0].join(timeout=15)
        assert (report.indexed, report.failed) == (96, 0), report.failures
        assert killed, "no embedding actor was killed mid-batch"
        assert killed[0] not in actors_at_end
        assert len(actors_at_end) == 2  # Ray restarted the killed actor
        _assert_exactly_once(postgres_url, indexed=96, failed=0, spaces=len(embedder.spaces))

        # resumable: nothing new is indexed; a copy, a rename and a touched file reuse the vectors by content
        assert lib.index_folder(folder, ray_workers=1).indexed == 0
        shutil.copy(folder / "p001.jpg", folder / "copy-of-p001.jpg")
        (folder / "p002.jpg").rename(folder / "renamed-p002.jpg")
        os.utime(folder / "p003.jpg", (time.time() + 5, time.time() + 5))
        report = lib.index_folder(folder, ray_workers=1)
        assert (report.indexed, report.reused) == (3, 3)
        assert lib.index_folder(folder, prune=True, ray_workers=1).pruned == 1  # p002.jpg's row
        _assert_exactly_once(postgres_url, indexed=97, failed=0, spaces=len(embedder.spaces))
        copy = lib.catalog.get_by_sources([str((folder / "copy-of-p001.jpg").resolve())])
        original = lib.catalog.get_by_sources([str((folder / "p001.jpg").resolve())])
        [(_, c)], [(_, o)] = copy.items(), original.items()
        for space in embedder.spaces:
            assert (
                lib.catalog.vector(c.id, embedder.model_id, space) == lib.catalog.vector(o.id, embedder.model_id, space)
            ).all()
    finally:
        lib.close()


def test_a_server_folder_job_runs_on_the_configured_cluster(ray_cluster, postgres_url, tmp_path, monkeypatch):
    from visualsearch.ingest import distributed
    from visualsearch.services.jobs import DONE, FAILED, FOLDER, JobQueue

    calls = []
    real = distributed.index_files_on_ray
    monkeypatch.setattr(distributed, "index_files_on_ray", lambda *a, **k: calls.append(1) or real(*a, **k))
    folder = _pictures(tmp_path / "pictures", 12)
    lib = _library(postgres_url, tmp_path, ray_cluster)
    queue = JobQueue(lib, workers=1)
    queue.start()
    try:
        job = queue.submit(FOLDER, {"path": str(folder)})
        deadline = time.monotonic() + 120
        while queue.get(job.id).status not in (DONE, FAILED) and time.monotonic() < deadline:
            time.sleep(0.2)
        finished = queue.get(job.id)
        assert (finished.status, finished.error, finished.done, finished.total) == (DONE, None, 12, 12)
        assert calls == [1]
    finally:
        queue.stop()
        lib.close()


def _crash_on_width_161(image: Image.Image) -> Any:
    """A model preprocessor standing in for a decoder bug that takes its process down on one file."""
    import numpy as np

    if image.width == 161:
        os._exit(1)
    return np.asarray(image.resize((8, 8)), dtype=np.uint8)


def test_a_decoder_crash_fails_only_its_file(ray_cluster, tmp_path):
    from ray import cloudpickle

    from tests.support import embedders
    from visualsearch.catalog import Catalog
    from visualsearch.config import Settings
    from visualsearch.ingest.distributed import index_folder_on_ray

    class CrashingDecoder(embedders.TinyEmbedder):
        def image_preprocessor(self) -> Any:
            return _crash_on_width_161

        def encode_prepared(self, inputs: Any) -> Any:
            return self.encode_images([Image.fromarray(x) for x in inputs])

    folder = _pictures(tmp_path / "pictures", 20)
    gradient_image(5, (161, 120)).save(folder / "p005.jpg", quality=90)
    settings = Settings.from_env(tmp_path / "library", batch_size=8)
    catalog = Catalog(str(tmp_path / "catalog.sqlite"))
    by_value = [embedders, sys.modules[__name__]]  # the workers cannot import the tests
    for module in by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        report = index_folder_on_ray(
            catalog, CrashingDecoder(), folder, settings, factory=CrashingDecoder, address=ray_cluster
        )
    finally:
        for module in by_value:
            cloudpickle.unregister_pickle_by_value(module)
        catalog.close()
    assert (report.indexed, report.failed) == (19, 1)
    assert report.failures == [(str((folder / "p005.jpg").resolve()), "the image decoder crashed on this file")]


# -- without a cluster: one readable line ----------------------------------------------------
def _index_cli(tmp_path: Path, *args: str) -> Any:
    from visualsearch.cli.main import app

    folder = _pictures(tmp_path / "pictures", 1)
    return CliRunner().invoke(app, ["index", str(folder), "--library", str(tmp_path / "lib"), *args])


def test_without_the_ray_extra_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = _index_cli(tmp_path, "--ray", "local")
    assert result.exit_code == 1
    assert "pip install 'visualsearch[ray]'" in result.output and "Traceback" not in result.output


def test_an_unreachable_cluster_is_one_line_in_seconds(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = _index_cli(tmp_path, "--ray", f"127.0.0.1:{port}")
    assert result.exit_code == 1
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in result.output
    assert time.monotonic() - started < 30
