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
