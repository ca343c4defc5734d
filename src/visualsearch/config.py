"""Settings for one library, with sensible defaults.

Every value can come from an environment variable ``VISUALSEARCH_<NAME>`` so
that the CLI, tests and the server agree without passing flags around. The
settings are a pydantic-settings model: values from the environment are checked
when the settings are built, and :meth:`Settings.from_env` reports a bad one as a
:class:`~visualsearch.errors.ConfigError` that names the variable.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError

#: Scores lie within +-MAX_SCORE: a cosine (-1 to 1), plus for text queries with colour or light
#: words up to 0.8 x the colour cosine, plus for pictures that show the query's words (read by OCR)
#: up to 0.5, so a score reaches about 2.3; min_score accepts the whole range.
MAX_SCORE = 3.0
#: Largest file we accept as an image, in bytes (uploads, URLs, files on disk).
MAX_IMAGE_BYTES = 40 * 1024 * 1024
#: Pixel cap against decompression bombs (about 16k x 11k).
MAX_IMAGE_PIXELS = 178_956_970
#: Cap on the bytes one decoded image may take in memory (width x height x bytes per pixel):
#: the pixel cap alone lets a 16-bit or multi-band image through at several times the size.
#: 512 MiB still admits a 170-megapixel 8-bit RGB photo.
MAX_DECODED_BYTES = 512 * 1024 * 1024
DEFAULT_MODEL = "conse-efficientnet-lite0-minilm"

ENV_PREFIX = "VISUALSEARCH_"


def megabytes(n: float) -> str:
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


def _resolve(path: Path) -> Path:
    return Path(path).expanduser().resolve()


class Settings(BaseSettings):
    """Everything one library needs to know. Build with :meth:`from_env`.

    Mutable on purpose: callers adjust a few values after building (``serve`` adds allowed
    hosts). Assignments are not validated, as with the plain dataclass this model replaces.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        # Fields whose variable has another name (VISUALSEARCH_LIBRARY, VISUALSEARCH_RATE_LIMIT)
        # still take their field name as a keyword: Settings(library_dir=...).
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        env_ignore_empty=False,
    )

    library_dir: Path = Field(
        default_factory=default_library_dir,
        validation_alias=AliasChoices("VISUALSEARCH_LIBRARY"),
        description="Library folder: the catalog, the vector indexes and uploaded images live here.",
    )
    model: str = Field(
        default=DEFAULT_MODEL,
        min_length=1,
        description="Embedding model (also `--model`); changing it re-embeds the library in the background.",
    )
    ann_threshold: int = Field(
        default=20_000,
        ge=0,
        description="Use an approximate (HNSW) index once a library holds at least this many vectors; "
        "below it an exact search is fast enough.",
    )
    batch_size: int = Field(
        default=32,
        ge=1,
        description="Images embedded per model call while indexing: larger batches are faster, up to memory.",
    )
    decode_workers: int = Field(
        default=max(1, (os.cpu_count() or 1)),
        ge=0,
        description="Worker processes that read, decode and resample images while the model runs "
        "(0 = one helper thread of the main process).",
    )
    model_threads: int = Field(
        default=0,
        ge=0,
        description="CPU threads of the image model (0 = every core). Fewer leave cores to other work on "
        "the machine; on 2 cores one thread indexed as fast as two and answered single-image queries slower.",
    )
    max_image_bytes: int = Field(
        default=MAX_IMAGE_BYTES,
        ge=1,
        description="Largest image file accepted, in bytes (uploads, URLs, files on disk).",
    )
    max_image_pixels: int = Field(
        default=MAX_IMAGE_PIXELS, ge=1, description="Most pixels one image may have, against decompression bombs."
    )
    max_decoded_bytes: int = Field(
        default=MAX_DECODED_BYTES,
        ge=1,
        description="Most memory one decoded image may take, in bytes (16-bit and multi-band images "
        "pass the pixel cap at several times the size).",
    )
    max_concurrent_decodes: int = Field(
        default=max(1, min(4, os.cpu_count() or 1)),
        ge=1,
        description="API server: images decoded at once (uploads, search by image, thumbnails); "
        "more wait briefly, then get 503 busy.",
    )
    max_concurrent_fetches: int = Field(
        default=8, ge=1, description="API server: URLs fetched at once; beyond this a fetch answers 503 busy at once."
    )
    allow_private_urls: bool = Field(
        default=False,
        description="Let the URL fetcher reach private, loopback and link-local addresses (local use only).",
    )
    fetch_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a URL fetch may take, so a slow server cannot hold a worker."
    )
    max_redirects: int = Field(default=5, ge=0, description="HTTP redirects a URL fetch follows before giving up.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the catalog (`postgresql+psycopg://...` for PostgreSQL); "
        "unset = `catalog.sqlite` in the library folder.",
    )
    vector_backend: Literal["auto", "local", "pgvector", "milvus"] = Field(
        default="auto",
        description="Where vectors are searched: `auto` (in PostgreSQL when the catalog is PostgreSQL, "
        "else files in the library folder), `local`, `pgvector` or `milvus`.",
    )
    milvus_uri: str | None = Field(
        default=None,
        description="Milvus: a file path (Milvus Lite) or a server URI; unset = `milvus.db` in the library folder.",
    )
    ray_address: str | None = Field(
        default=None,
        description="Index folders on a Ray cluster (`pip install 'visualsearch[ray]'`): `host:6379`, "
        "`ray://host:10001`, or `local` for a cluster on this machine only; unset = in this process. "
        "Every worker must see the folders (and the library folder) at the same paths.",
    )
    rate_limit_per_minute: int = Field(
        default=600,
        ge=0,
        validation_alias=AliasChoices("VISUALSEARCH_RATE_LIMIT"),
        description="API server: requests per minute per API key (thumbnails/originals and the local "
        "user are not limited); 0 = off.",
    )
    max_page_size: int = Field(default=200, ge=1, description="API server: most results or assets one page may hold.")
    max_files_per_upload: int = Field(default=100, ge=1, description="API server: most files in one upload request.")
    max_request_bytes: int = Field(
        default=1024 * 1024 * 1024, ge=1, description="API server: most bytes one request may carry."
    )
    sync_upload_files: int = Field(
        default=8, ge=0, description="API server: uploads with more files than this run as a background job."
    )
    thumbnails_at_index: bool = Field(
        default=True,
        description="Make each image's 256 px preview while indexing (same decode pass), so the page's grid "
        "of a new library loads at once; costs about 16% of indexing throughput. Off: made on first view.",
    )
    copies_at_index: bool = Field(
        default=True,
        description="After indexing new pictures (`visualsearch index`; the server's folder, background upload "
        "and re-embedding jobs), check the library's candidate copies that were never checked, pixel by pixel, and "
        "keep the verdicts, so that the Duplicates tab and `visualsearch duplicates` answer at once instead of "
        "doing that work when first asked (the first time, that is every candidate pair). About 4-5 ms per pair: "
        "on the real set of clip art and wallpapers (1.1-1.3 pairs an image) indexing took 36-58% longer; a "
        "library of photos has few pairs besides its copies. Off: the first duplicates run does it.",
    )
    ocr: bool = Field(
        default=False,
        description="Read the words in pictures while indexing (signs, posters, slides, screenshots), so a text "
        "search finds them. Needs `pip install 'visualsearch[ocr]'`. Off by default: it reads a few pictures a "
        "second on 2 cores (docs/benchmarks.md). Turned on later, `visualsearch read-text` reads the pictures "
        "already indexed.",
    )
    ocr_size: int = Field(
        default=960,
        ge=320,
        le=2000,
        description="Longest side, in pixels, the text finder looks at: larger finds smaller text and costs about "
        "its square (at most 2000, the reader's own limit).",
    )
    duplicate_policy: Literal["warn", "reject", "allow"] = Field(
        default="warn",
        description="Uploads that are near-duplicates of an image in the library: `warn` (add, and say so), "
        "`reject` (refuse with 409) or `allow` (add without checking).",
    )
    folder_roots: Annotated[tuple[Path, ...], NoDecode] = Field(
        default_factory=default_folder_roots,
        description="API server: folders an admin may ask the server to index, with their subfolders "
        "(separated by `os.pathsep`, `:` on Linux and macOS; empty = none). Nothing else, so "
        "that a request cannot index (and then serve) `/home`.",
    )
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="API server: extra host names it answers to, besides loopback names and the address "
        "it listens on (`,`-separated).",
    )
    bind_host: str = Field(
        default="127.0.0.1", description="API server: the address it listens on (set by `visualsearch serve --host`)."
    )

    @field_validator("library_dir", mode="before")
    @classmethod
    def _empty_library_is_default(cls, value: Any) -> Any:
        return default_library_dir() if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url", "milvus_uri", "ray_address", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("allow_private_urls", mode="before")
    @classmethod
    def _empty_is_false(cls, value: Any) -> Any:
        return False if isinstance(value, str) and not value.strip() else value

    @field_validator("folder_roots", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(Path(part) for part in value.split(os.pathsep) if part.strip())
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(host.strip() for host in value.split(",") if host.strip())
        return value

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """The environment variable of each field, by field name (``library_dir`` -> ``VISUALSEARCH_LIBRARY``)."""
        names = {}
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, AliasChoices):
                alias = alias.choices[0]
            names[name] = alias if isinstance(alias, str) else ENV_PREFIX + name.upper()
        return names

    @classmethod
    def from_env(cls, library_dir: Path | None = None, **overrides: Any) -> Settings:
        """Settings from ``VISUALSEARCH_*`` variables; keyword arguments that are not None win over them.

        ``library_dir`` and ``folder_roots`` come back absolute, with ``~`` expanded. A value that
        cannot work raises :class:`ConfigError` naming the variable (or argument) and what is allowed.
        """
        given = {key: value for key, value in overrides.items() if value is not None}
        if library_dir is not None:
            given["library_dir"] = library_dir
        unknown = sorted(set(given) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"Settings.from_env() got unknown setting(s): {', '.join(unknown)}")
        try:
            settings = cls(**given)
        except ValidationError as exc:
            raise ConfigError(cls._describe(exc, given)) from None
        settings.library_dir = _resolve(settings.library_dir)
        settings.folder_roots = tuple(_resolve(root) for root in settings.folder_roots)
        return settings

    @classmethod
    def _describe(cls, exc: ValidationError, given: dict[str, Any]) -> str:
        """One line per bad value, each naming where it came from: ``VISUALSEARCH_X: must be ... (got 'y')``."""
        env_names = cls.env_names()
        by_key = {
            **{name: name for name in env_names},
            **{env.lower(): name for name, env in env_names.items()},
            **{env: name for name, env in env_names.items()},
        }
        problems = []
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else ""
            field = by_key.get(key, by_key.get(key.lower(), key))
            source = field if field in given else env_names.get(field, key)
            problems.append(f"{source}: {cls._explain(field, error)} (got {_shorten(error.get('input'))})")
        return "; ".join(problems)

    @classmethod
    def _explain(cls, field: str, error: Any) -> str:
        kind = error["type"]
        ctx = error.get("ctx") or {}
        if kind == "literal_error":
            info = cls.model_fields.get(field)
            choices = typing.get_args(info.annotation) if info is not None else ()
            if choices:
                return "must be one of " + ", ".join(map(str, choices))
        if kind in ("int_parsing", "int_type", "int_from_float"):
            return "must be a whole number"
        if kind in ("float_parsing", "float_type"):
            return "must be a number"
        if kind in ("bool_parsing", "bool_type"):
            return "must be true or false (or 1/0, yes/no, on/off)"
        if kind == "greater_than_equal":
            return f"must be at least {_number(ctx['ge'])}"
        if kind == "greater_than":
            return f"must be more than {_number(ctx['gt'])}"
        if kind == "string_too_short":
            return "must not be empty"
        return str(error["msg"]).removeprefix("Value error, ")

    @property
    def decode_limits(self) -> dict[str, int]:
        """The caps every decode of an image for this library applies (keyword arguments of ``decode_bytes``)."""
        return {
            "max_bytes": self.max_image_bytes,
            "max_pixels": self.max_image_pixels,
            "max_decoded_bytes": self.max_decoded_bytes,
        }

    @property
    def catalog_path(self) -> Path:
        return self.library_dir / "catalog.sqlite"

    @property
    def catalog_url(self) -> str:
        """What the catalog opens: ``database_url``, or ``catalog.sqlite`` in the library folder."""
        return self.database_url or str(self.catalog_path)

    @property
    def index_dir(self) -> Path:
        return self.library_dir / "index"


def _shorten(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
