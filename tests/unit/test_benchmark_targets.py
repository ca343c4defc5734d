"""The duplicates benchmark's targets line (issue 14) says which targets its figures meet."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))  # the benchmark imports its neighbour, realdata, as a script does
    try:
        yield importlib.import_module("duplicates")
    finally:
        sys.path.remove(str(BENCHMARKS))
        sys.modules.pop("duplicates", None)


def test_the_targets_line_shows_the_digit_that_decides(bench):
    # 388 of 392: 0.98980, which three decimals would print as 0.990 beside "NOT MET".
    line = bench._targets(388 / 392, 409 / 426)
    assert "precision 0.9898 (target >= 0.99: NOT MET)" in line
    assert "recall 0.960 (target >= 0.95: met)" in line
    line = bench._targets(388 / 391, 0.95)
    assert "precision 0.992 (target >= 0.99: met)" in line and "recall 0.950 (target >= 0.95: met)" in line
    assert "recall 0.949 (target >= 0.95: NOT MET)" in bench._targets(1.0, 0.949)
    assert "precision 0.98996 (target >= 0.99: NOT MET)" in bench._targets(0.98996, 1.0)  # 0.9900 would mislead too
