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
#: Cap on the bytes one decoded image may take in memory (width x height x bytes per pixel):
#: the pixel cap alone lets a 16-bit or multi-band image through at several times the size.
#: 512 MiB still admits a 170-megapixel 8-bit RGB photo.
MAX_DECODED_BYTES = 512 * 1024 * 1024
DEFAULT_MODEL = "conse-efficientnet-lite0-minilm"


def megabytes(n: int | float) -> str:
    """Sizes as people read them in our limits: 40 MB means 40 x 2**20 bytes."""
    value = n / 2**20
    return f"{value:.0f} MB" if value >= 10 or value == int(value) else f"{value:.1f} MB"


def default_library_dir() -> Path:
    """Per-user data folder, e.g. ``~/.local/share/visualsearch/library``."""
    return Path(platformdirs.user_data_dir("visualsearch", appauthor=False)) / "library"


def default_cache_dir() -> Path:
    """Where converted model files live (ONNX exports, text-embedding caches)."""
    env = os.environ.get("VISUALSEARCH_CACHE_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_cache_dir("visualsearch", appauthor=False))


def default_folder_roots() -> tuple[Path, ...]:
    """Where the API may index folders unless told otherwise: the user's Pictures folder."""
    return (Path(platformdirs.user_pictures_dir()).expanduser().resolve(),)


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
    max_decoded_bytes: int = MAX_DECODED_BYTES
    #: API server: images decoded at once (uploads, search by image, thumbnails); more wait briefly, then 503 busy.
    max_concurrent_decodes: int = max(1, min(4, os.cpu_count() or 1))
    #: API server: URLs fetched at once; beyond this a fetch answers 503 busy at once.
    max_concurrent_fetches: int = 8
    #: Let the URL fetcher reach private, loopback and link-local addresses (local use only).
    allow_private_urls: bool = False
    fetch_timeout: float = 10.0
    max_redirects: int = 5
    #: SQLAlchemy URL of the catalog; None = ``catalog.sqlite`` in the library folder.
    database_url: str | None = None
    #: Where vectors are searched: "auto" (in PostgreSQL when the catalog is PostgreSQL, else
    #: files in the library folder), "local", "pgvector" or "milvus".
    vector_backend: str = "auto"
    #: Milvus: a file path (Milvus Lite) or a server URI; None = ``milvus.db`` in the library folder.
    milvus_uri: str | None = None
    #: API server: requests per minute per API key (thumbnails/originals and the local user are not limited); 0 = off.
    rate_limit_per_minute: int = 600
    #: API server: most results or assets one page may hold.
    max_page_size: int = 200
    #: API server: most files in one upload request, and the most bytes one request may carry.
    max_files_per_upload: int = 100
    max_request_bytes: int = 1024 * 1024 * 1024
    #: API server: uploads with more files than this run as a background job.
    sync_upload_files: int = 8
    #: Uploads that are near-duplicates of an image in the library: "warn" (add, and say so),
    #: "reject" (refuse with 409) or "allow" (add without checking).
    duplicate_policy: str = "warn"
    #: API server: folders an admin may ask the server to index (and their subfolders). Default: the
    #: user's Pictures folder. Nothing else, so that a request cannot index (and then serve) ``/home``.
    folder_roots: tuple[Path, ...] = field(default_factory=lambda: default_folder_roots())
    #: API server: extra host names it answers to (besides loopback names and the address it listens on).
    allowed_hosts: tuple[str, ...] = ()
    #: API server: the address it listens on (set by ``visualsearch serve --host``).
    bind_host: str = "127.0.0.1"

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
        settings.database_url = os.environ.get("VISUALSEARCH_DATABASE_URL") or None
        settings.vector_backend = os.environ.get("VISUALSEARCH_VECTOR_BACKEND", settings.vector_backend)
        settings.milvus_uri = os.environ.get("VISUALSEARCH_MILVUS_URI") or None
        if "VISUALSEARCH_RATE_LIMIT" in os.environ:
            settings.rate_limit_per_minute = int(os.environ["VISUALSEARCH_RATE_LIMIT"])
        settings.duplicate_policy = os.environ.get("VISUALSEARCH_DUPLICATE_POLICY", settings.duplicate_policy)
        if settings.duplicate_policy not in ("warn", "reject", "allow"):
            raise ValueError("VISUALSEARCH_DUPLICATE_POLICY must be warn, reject or allow")
        roots = os.environ.get("VISUALSEARCH_FOLDER_ROOTS")
        if roots is not None:
            settings.folder_roots = tuple(Path(r).expanduser().resolve() for r in roots.split(os.pathsep) if r)
        hosts = os.environ.get("VISUALSEARCH_ALLOWED_HOSTS")
        if hosts:
            settings.allowed_hosts = tuple(h.strip() for h in hosts.split(",") if h.strip())
        if "VISUALSEARCH_DECODE_WORKERS" in os.environ:
            settings.decode_workers = int(os.environ["VISUALSEARCH_DECODE_WORKERS"])
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        settings.folder_roots = tuple(Path(r).expanduser().resolve() for r in settings.folder_roots)
        settings.library_dir = settings.library_dir.expanduser().resolve()
        return settings

    @property
    def decode_limits(self) -> dict[str, int]:
        """The caps every decode of an image for this library applies (keyword arguments of ``decode_bytes``)."""
        return {"max_bytes": self.max_image_bytes, "max_pixels": self.max_image_pixels,
                "max_decoded_bytes": self.max_decoded_bytes}

    @property
    def catalog_path(self) -> Path:
        return self.library_dir / "catalog.sqlite"

    @property
    def index_dir(self) -> Path:
        return self.library_dir / "index"
