"""Where the repository and the tests' own real photos are."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Openly licensed real photos kept in the repository (made by scripts/build-test-photos;
# provenance in SOURCES.md there, what the default model sees in each in labels.json).
#: The sample photos that come with the package (visualsearch demo); the tests use them too.
TEST_PHOTOS = REPO / "src" / "visualsearch" / "demo" / "photos"
