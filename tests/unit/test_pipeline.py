"""The ingest pipeline: worker processes, input order, crash isolation, stage timings."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from tests.support.embedders import TinyEmbedder
from tests.support.images import gradient_image
from visualsearch.config import Settings
from visualsearch.ingest.indexer import IndexReport, index_files
from visualsearch.ingest.pipeline import PreparedStream, prepare, prepared_stream
from visualsearch.ingest.scan import FoundFile, scan_folder
from visualsearch.services import Library


def make_photos(folder: Path, n: int) -> list[FoundFile]:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        gradient_image(i, (64 + i, 48)).save(folder / f"p{i:03}.jpg", quality=90)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return list(scan_folder(folder))


def crash_on_boom(found: FoundFile) -> object:
    """A job whose worker dies (as a crashing C decoder would) on files named boom*."""
    if found.path.name.startswith("boom"):
        os._exit(3)
    return prepare(found, max_bytes=1 << 26, max_pixels=1 << 28)


def test_worker_processes_give_the_same_results_in_order(tmp_path):
    files = make_photos(tmp_path / "pics", 40)
    kwargs = dict(max_bytes=1 << 26, max_pixels=1 << 28, preprocessor=None, workers=2, batch_size=4)
    in_processes = list(prepared_stream(files, processes=True, **kwargs))
    in_threads = list(prepared_stream(files, processes=False, **kwargs))
    assert [p.found for p in in_processes] == files  # input order kept
    for a, b in zip(in_processes, in_threads):
        assert (a.sha256, a.pixel_sha256, a.phash, a.error) == (b.sha256, b.pixel_sha256, b.phash, b.error)
        if a.error is None:
            assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    broken = [p for p in in_processes if p.found.path.name == "broken.jpg"]
    assert broken[0].error and "corrupt" in broken[0].error


@pytest.mark.slow  # restarts the worker pool twice, ~3 s
def test_a_crashing_worker_only_fails_its_own_file(tmp_path):
    files = make_photos(tmp_path / "pics", 12)
    for name in ("boom1.jpg", "boom2.jpg"):
        gradient_image(99, (64, 48)).save(tmp_path / "pics" / name)
    files = list(scan_folder(tmp_path / "pics"))
    stream = PreparedStream(files, crash_on_boom, workers=2, processes=True, window=6)
    results = list(stream)
    assert [p.found for p in results] == files
    crashed = {p.found.path.name for p in results if p.error == "the image decoder crashed on this file"}
    assert crashed == {"boom1.jpg", "boom2.jpg"}
    assert sum(p.error is None for p in results) == 12  # every other good file made it
    assert stream.pool_restarts >= 2


def test_indexing_through_processes_matches_in_process_indexing_and_reports_stage_times(tmp_path):
    files = make_photos(tmp_path / "pics", 30)
    libs = []
    for name, processes in (("procs", True), ("threads", False)):
        lib = Library(Settings.from_env(tmp_path / name, batch_size=8, decode_workers=2), embedder=TinyEmbedder())
        report = IndexReport()
        index_files(lib.catalog, lib.embedder, files, lib.settings, report, processes=processes)
        assert (report.indexed, report.failed) == (30, 1)
        assert set(report.timings) == {"decode", "fingerprint", "thumbnail", "preprocess", "model", "write", "wait"}
        assert all(v >= 0 for v in report.timings.values()) and report.timings["decode"] > 0
        assert report.seconds > 0
        libs.append(lib)
    ids_a, vec_a = map(np.concatenate, zip(*libs[0].catalog.vectors("tiny-test-model", "visual")))
    ids_b, vec_b = map(np.concatenate, zip(*libs[1].catalog.vectors("tiny-test-model", "visual")))
    assert np.array_equal(ids_a, ids_b) and np.allclose(vec_a, vec_b)
    for lib in libs:
        lib.close()


@pytest.mark.slow  # the real model, ~5 s
def test_model_preprocessing_in_workers_matches_the_model_alone(tmp_path):
    """The bundled model's split (crop in workers, normalise + run in the model process) changes nothing."""
    from visualsearch.models.registry import load_embedder

    embedder = load_embedder("conse-efficientnet-lite0-minilm")
    images = [gradient_image(i, (320 + 7 * i, 240)) for i in range(5)]
    whole = embedder.encode_images(images)
    prep = embedder.image_preprocessor()
    assert isinstance(prep, partial)  # picklable, so worker processes can run it
    split = embedder.encode_prepared(np.stack([prep(im) for im in images]))
    for space in whole:
        assert np.allclose(whole[space], split[space], atol=1e-5)


@pytest.mark.slow  # the real model
def test_the_model_runs_a_batch_in_chunks_with_the_same_results():
    """ONNX Runtime takes 8 pictures at a time (faster: they stay in cache); a batch of 17 must give
    what the pictures give one by one, in order."""
    from visualsearch.models.efficientnet import ONNX_CHUNK
    from visualsearch.models.registry import load_embedder

    embedder = load_embedder("conse-efficientnet-lite0-minilm")
    prep = embedder.image_preprocessor()
    inputs = np.stack([prep(gradient_image(i, (320 + 9 * i, 240))) for i in range(2 * ONNX_CHUNK + 1)])
    batch = embedder.encode_prepared(inputs)
    for i in (0, ONNX_CHUNK - 1, ONNX_CHUNK, 2 * ONNX_CHUNK):
        alone = embedder.encode_prepared(inputs[i : i + 1])
        for space in batch:
            assert np.allclose(batch[space][i], alone[space][0], atol=1e-5), (space, i)


def hang_on_stuck(found: FoundFile) -> object:
    """A job that never returns on files named stuck* (a read on a dead network mount)."""
    if found.path.name.startswith("stuck"):
        import time

        time.sleep(3600)
    return prepare(found, max_bytes=1 << 26, max_pixels=1 << 28)


@pytest.mark.slow  # waits out a per-file timeout, ~7 s
def test_a_stuck_file_is_given_up_after_the_timeout_and_the_rest_go_on(tmp_path):
    files = make_photos(tmp_path / "pics", 8)
    gradient_image(98, (64, 48)).save(tmp_path / "pics" / "stuck.jpg")
    files = list(scan_folder(tmp_path / "pics"))
    stream = PreparedStream(files, hang_on_stuck, workers=2, processes=True, window=4, file_timeout=3.0)
    results = list(stream)
    assert [p.found for p in results] == files
    stuck = [p for p in results if p.found.path.name == "stuck.jpg"]
    assert stuck[0].error and "took over 3 s" in stuck[0].error
    assert sum(p.error is None for p in results) == 8  # every good file made it
