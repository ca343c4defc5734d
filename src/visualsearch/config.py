"""Settings for one library, with sensible defaults.

Every value can come from an environment variable ``VISUALSEARCH_<NAME>`` so
that the CLI, tests and (later) the server agree without passing flags around.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

#: Largest file we accept as an image, in bytes (uploads, URLs, files on disk).
MAX_IMAGE_BYTES = 40 * 1024 * 1024
#: Pixel cap against decompression bombs (about 16k x 11k).
MAX_IMAGE_PIXELS = 178_956_970
DEFAULT_MODEL = "conse-efficientnet-lite0-minilm"


def default_library_dir() -> Path:
    """Per-user data folder, e.g. ``~/.local/share/visualsearch/library``."""
    return Path(platformdirs.user_data_dir("visualsearch", appauthor=False)) / "library"


def default_cache_dir() -> Path:
    """Where converted model files live (ONNX exports, text-embedding caches)."""
    env = os.environ.get("VISUALSEARCH_CACHE_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("visualsearch", appauthor=False))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    """Everything one library needs to know. Build with :meth:`from_env`."""

    library_dir: Path = field(default_factory=default_library_dir)
    model: str = DEFAULT_MODEL
    #: Use an approximate index once a library holds at least this many vectors.
    ann_threshold: int = 20_000
    batch_size: int = 32
    #: Worker processes that decode images in parallel (0 = decode in the main process).
    decode_workers: int = max(1, (os.cpu_count() or 1))
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    #: Let the URL fetcher reach private, loopback and link-local addresses (local use only).
    allow_private_urls: bool = False
    fetch_timeout: float = 10.0
    max_redirects: int = 5

    @classmethod
    def from_env(cls, library_dir: Path | None = None, **overrides) -> "Settings":
        env_dir = os.environ.get("VISUALSEARCH_LIBRARY")
        settings = cls()
        if library_dir is not None:
            settings.library_dir = Path(library_dir)
        elif env_dir:
            settings.library_dir = Path(env_dir)
        settings.model = os.environ.get("VISUALSEARCH_MODEL", settings.model)
        settings.allow_private_urls = _env_bool(
            "VISUALSEARCH_ALLOW_PRIVATE_URLS", settings.allow_private_urls
        )
        if "VISUALSEARCH_ANN_THRESHOLD" in os.environ:
            settings.ann_threshold = int(os.environ["VISUALSEARCH_ANN_THRESHOLD"])
        if "VISUALSEARCH_DECODE_WORKERS" in os.environ:
            settings.decode_workers = int(os.environ["VISUALSEARCH_DECODE_WORKERS"])
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        settings.library_dir = settings.library_dir.expanduser().resolve()
        return settings

    @property
    def catalog_path(self) -> Path:
        return self.library_dir / "catalog.sqlite"

    @property
    def index_dir(self) -> Path:
        return self.library_dir / "index"
