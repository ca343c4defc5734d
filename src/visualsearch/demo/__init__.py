"""Sample photos that come with visualsearch, for `visualsearch demo` and the test suite.

Twenty-four small JPEGs (longest side 480 px) of openly licensed images nobody on the
team made: scikit-image's sample photos (public domain / CC0) and Debian's wallpaper
and clip-art packages. ``photos/SOURCES.md`` names the source and licence of each file,
``photos/labels.json`` what is in it (written by looking at it) and the searches
checked to find it first with the default model. ``scripts/build-test-photos``
rebuilds the folder from the packages; nobody edits these files by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

PHOTOS = Path(__file__).with_name("photos")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def photo_files() -> list[Path]:
    """The sample photos, sorted by name."""
    return sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


#: Searches to suggest first, when labels.json confirms that they find their photo first.
SUGGESTED = ("a cat", "a cup of coffee", "a ladybug on a leaf", "a rocket", "a red car", "a flower", "a dog")


def sample_queries(limit: int = 6) -> list[str]:
    """Searches that find a sample photo first, to suggest to people (checked in labels.json)."""
    labels: dict[str, dict[str, list[str]]] = json.loads((PHOTOS / "labels.json").read_text())
    verified = [q for entry in labels.values() for q in entry.get("text_queries", [])]
    return [q for q in SUGGESTED if q in verified][:limit]
