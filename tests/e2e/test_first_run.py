"""The first run on a machine: our own progress, not a library's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.images import gradient_image

pytestmark = pytest.mark.slow  # exports the bundled text model to ONNX (about 8 s)


def test_first_index_prints_no_third_party_progress_bars(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(3):
        gradient_image(i).save(folder / f"g{i}.png")
    env = dict(os.environ, VISUALSEARCH_CACHE_DIR=str(tmp_path / "fresh-cache"))  # nothing exported yet
    proc = subprocess.run(
        [sys.executable, "-m", "visualsearch", "index", str(folder), "--library", str(tmp_path / "lib")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "indexed 3" in out
    assert "Loading weights" not in out and "it/s]" not in out, out


def test_demo_builds_the_sample_library_and_serves_the_page(tmp_path):
    """`visualsearch demo`: one command from a fresh install to a page that finds things."""
    import time

    import httpx

    from tests.support.live import free_port

    port = free_port()
    library = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "visualsearch", "demo", "--library", str(library), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the demo server never became ready"
            time.sleep(0.2)
        assert httpx.get(base + "/", timeout=10).status_code == 200
        stats = httpx.get(f"{base}/api/stats", timeout=10).json()
        assert stats["indexed"] == 24
        hits = httpx.post(f"{base}/api/search", json={"text": "a cat", "limit": 3}, timeout=60).json()["items"]
        assert hits[0]["asset"]["name"] == "cat-chelsea.jpg"
        assert sorted(p.name for p in (library / "sample-photos").iterdir())[0] == "ancient-coins.jpg"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "try searching for" in out and "open http://127.0.0.1" in out


def test_errors_are_one_unbroken_line_and_not_markup(tmp_path):
    """Long messages are not cut at 80 columns, and [brackets] in a path are printed as they are."""
    missing = tmp_path / "[holiday]" / ("a-rather-long-file-name-" * 3 + ".jpg")
    env = dict(os.environ, VISUALSEARCH_VECTOR_BACKEND="faiss")
    proc = subprocess.run(
        [sys.executable, "-m", "visualsearch", "status", "--library", str(tmp_path / "lib")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    [line] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert line.startswith("error: VISUALSEARCH_VECTOR_BACKEND") and line.rstrip().endswith("(got 'faiss')")
    proc = subprocess.run(
        [sys.executable, "-m", "visualsearch", "similar", str(missing), "--library", str(tmp_path / "lib")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert f"error: no such file: {missing}" in proc.stderr.splitlines()
