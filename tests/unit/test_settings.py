"""Typed settings: defaults, environment variables, start-up errors, and the README table.

The README's ``## Settings`` table is checked against the model, so a new setting (or a changed
default) cannot ship undocumented.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from visualsearch.config import (
    DEFAULT_MODEL,
    MAX_DECODED_BYTES,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    Settings,
    default_cache_dir,
    default_folder_roots,
    default_library_dir,
)
from visualsearch.errors import ConfigError, VisualSearchError

README = Path(__file__).resolve().parents[2] / "README.md"
CORES = max(1, os.cpu_count() or 1)

#: The defaults of the dataclass this model replaced, field by field.
TODAYS_DEFAULTS: dict[str, Any] = {
    "library_dir": default_library_dir(),
    "model": DEFAULT_MODEL,
    "ann_threshold": 20_000,
    "batch_size": 32,
    "decode_workers": CORES,
    "model_threads": 0,
    "max_image_bytes": MAX_IMAGE_BYTES,
    "max_image_pixels": MAX_IMAGE_PIXELS,
    "max_decoded_bytes": MAX_DECODED_BYTES,
    "max_concurrent_decodes": max(1, min(4, os.cpu_count() or 1)),
    "max_concurrent_fetches": 8,
    "allow_private_urls": False,
    "fetch_timeout": 10.0,
    "max_redirects": 5,
    "database_url": None,
    "vector_backend": "auto",
    "milvus_uri": None,
    "ray_address": None,
    "rate_limit_per_minute": 600,
    "max_page_size": 200,
    "max_files_per_upload": 100,
    "max_request_bytes": 1024 * 1024 * 1024,
    "sync_upload_files": 8,
    "thumbnails_at_index": True,
    "copies_at_index": True,
    "ocr": False,
    "ocr_size": 960,
    "duplicate_policy": "warn",
    "folder_roots": default_folder_roots(),
    "allowed_hosts": (),
    "bind_host": "127.0.0.1",
}

#: Variables whose names differ from VISUALSEARCH_<FIELD>, and have to stay as they are.
RENAMED = {"library_dir": "VISUALSEARCH_LIBRARY", "rate_limit_per_minute": "VISUALSEARCH_RATE_LIMIT"}

#: Read outside the model (by ``default_cache_dir()``, which runs without settings) but documented
#: in the same table.
OUTSIDE_MODEL = {"VISUALSEARCH_CACHE_DIR"}

#: Defaults the README describes in words (they depend on the machine or the library), with the
#: words it must use and the value the model must have.
DESCRIBED_DEFAULTS: dict[str, tuple[str, Any]] = {
    "VISUALSEARCH_LIBRARY": ("per-user data folder", default_library_dir()),
    "VISUALSEARCH_DECODE_WORKERS": ("number of cores", CORES),
    "VISUALSEARCH_MAX_CONCURRENT_DECODES": ("number of cores, at most 4", min(4, CORES)),
    "VISUALSEARCH_DATABASE_URL": ("`catalog.sqlite` in the library", None),
    "VISUALSEARCH_MILVUS_URI": ("`milvus.db` in the library", None),
    "VISUALSEARCH_RAY_ADDRESS": ("unset: index in this process", None),
    "VISUALSEARCH_FOLDER_ROOTS": ("your Pictures folder", default_folder_roots()),
    "VISUALSEARCH_ALLOWED_HOSTS": ("none", ()),
    "VISUALSEARCH_CACHE_DIR": ("per-user cache folder", None),
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VISUALSEARCH_* variable from the shell or other tests (the cache folder stays)."""
    for name in list(os.environ):
        if name.upper().startswith("VISUALSEARCH_") and name.upper() not in OUTSIDE_MODEL:
            monkeypatch.delenv(name)


def test_defaults_are_todays() -> None:
    settings = Settings()
    assert settings.model_dump() == TODAYS_DEFAULTS
    assert set(Settings.model_fields) == set(TODAYS_DEFAULTS)


def test_from_env_without_env_keeps_defaults_and_resolves_paths(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / "lib" / ".." / "lib")
    assert settings.library_dir == (tmp_path / "lib").resolve()
    assert settings.folder_roots == tuple(p.resolve() for p in default_folder_roots())
    expected = dict(TODAYS_DEFAULTS, library_dir=settings.library_dir, folder_roots=settings.folder_roots)
    assert settings.model_dump() == expected


def test_public_surface() -> None:
    settings = Settings.from_env(Path("/tmp/vs-lib"))
    assert settings.catalog_path == Path("/tmp/vs-lib").resolve() / "catalog.sqlite"
    assert settings.index_dir == Path("/tmp/vs-lib").resolve() / "index"
    assert settings.decode_limits == {
        "max_bytes": MAX_IMAGE_BYTES,
        "max_pixels": MAX_IMAGE_PIXELS,
        "max_decoded_bytes": MAX_DECODED_BYTES,
    }
    settings.allowed_hosts = (*settings.allowed_hosts, "photos.home.arpa")  # stays mutable
    assert settings.allowed_hosts == ("photos.home.arpa",)
    assert Settings(library_dir=Path("/x"), rate_limit_per_minute=5).rate_limit_per_minute == 5


def test_env_names() -> None:
    names = Settings.env_names()
    for field, name in names.items():
        assert name == RENAMED.get(field, "VISUALSEARCH_" + field.upper())


@pytest.mark.parametrize(
    ("variable", "raw", "field", "value"),
    [
        ("VISUALSEARCH_LIBRARY", "{tmp}/elsewhere", "library_dir", "{tmp}/elsewhere"),
        ("VISUALSEARCH_MODEL", "hf-clip:openai/clip-vit-base-patch32", "model", "hf-clip:openai/clip-vit-base-patch32"),
        ("VISUALSEARCH_ALLOW_PRIVATE_URLS", "yes", "allow_private_urls", True),
        ("VISUALSEARCH_ALLOW_PRIVATE_URLS", "1", "allow_private_urls", True),
        ("VISUALSEARCH_ALLOW_PRIVATE_URLS", "off", "allow_private_urls", False),
        ("VISUALSEARCH_ALLOW_PRIVATE_URLS", "", "allow_private_urls", False),
        ("VISUALSEARCH_ANN_THRESHOLD", "500", "ann_threshold", 500),
        ("VISUALSEARCH_DATABASE_URL", "postgresql+psycopg://u@h/db", "database_url", "postgresql+psycopg://u@h/db"),
        ("VISUALSEARCH_DATABASE_URL", "", "database_url", None),
        ("VISUALSEARCH_VECTOR_BACKEND", "milvus", "vector_backend", "milvus"),
        ("VISUALSEARCH_MILVUS_URI", "http://milvus:19530", "milvus_uri", "http://milvus:19530"),
        ("VISUALSEARCH_MILVUS_URI", "", "milvus_uri", None),
        ("VISUALSEARCH_RATE_LIMIT", "0", "rate_limit_per_minute", 0),
        ("VISUALSEARCH_DUPLICATE_POLICY", "reject", "duplicate_policy", "reject"),
        ("VISUALSEARCH_DECODE_WORKERS", "0", "decode_workers", 0),
        ("VISUALSEARCH_BATCH_SIZE", "4", "batch_size", 4),
        ("VISUALSEARCH_FETCH_TIMEOUT", "2.5", "fetch_timeout", 2.5),
        ("VISUALSEARCH_BIND_HOST", "0.0.0.0", "bind_host", "0.0.0.0"),
    ],
)
def test_each_variable_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, raw: str, field: str, value: Any
) -> None:
    monkeypatch.setenv(variable, raw.format(tmp=tmp_path))
    if isinstance(value, str) and "{tmp}" in value:
        value = Path(value.format(tmp=tmp_path)).resolve()
    assert getattr(Settings.from_env(), field) == value


def test_every_field_has_a_variable_and_a_description(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each integer setting can be set from its variable; each field says what it is for."""
    for field, name in Settings.env_names().items():
        info = Settings.model_fields[field]
        assert info.description and len(info.description) > 20, field
        if info.annotation is int:
            value = max([7, *(getattr(m, "ge", 0) for m in info.metadata)])  # within the field's bounds
            monkeypatch.setenv(name, str(value))
            assert getattr(Settings.from_env(), field) == value, name
            monkeypatch.delenv(name)


def test_folder_roots_are_os_pathsep_separated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("VISUALSEARCH_FOLDER_ROOTS", f"{a}{os.pathsep}{os.pathsep}{b}/../b{os.pathsep}")
    assert Settings.from_env().folder_roots == (a.resolve(), b.resolve())
    monkeypatch.setenv("VISUALSEARCH_FOLDER_ROOTS", "~/Photos")
    assert Settings.from_env().folder_roots == (Path("~/Photos").expanduser().resolve(),)


def test_empty_folder_roots_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISUALSEARCH_FOLDER_ROOTS", "")
    assert Settings.from_env().folder_roots == ()


def test_allowed_hosts_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISUALSEARCH_ALLOWED_HOSTS", " photos.home.arpa, ,nas.local ,")
    assert Settings.from_env().allowed_hosts == ("photos.home.arpa", "nas.local")
    monkeypatch.setenv("VISUALSEARCH_ALLOWED_HOSTS", '["not", "json"]')  # plain format, never JSON
    assert Settings.from_env().allowed_hosts == ('["not"', '"json"]')
    monkeypatch.setenv("VISUALSEARCH_ALLOWED_HOSTS", "")
    assert Settings.from_env().allowed_hosts == ()


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        (
            "VISUALSEARCH_VECTOR_BACKEND",
            "faiss",
            "VISUALSEARCH_VECTOR_BACKEND: must be one of auto, local, pgvector, milvus (got 'faiss')",
        ),
        (
            "VISUALSEARCH_DUPLICATE_POLICY",
            "maybe",
            "VISUALSEARCH_DUPLICATE_POLICY: must be one of warn, reject, allow (got 'maybe')",
        ),
        ("VISUALSEARCH_ANN_THRESHOLD", "abc", "VISUALSEARCH_ANN_THRESHOLD: must be a whole number (got 'abc')"),
        ("VISUALSEARCH_BATCH_SIZE", "-4", "VISUALSEARCH_BATCH_SIZE: must be at least 1 (got '-4')"),
        ("VISUALSEARCH_DECODE_WORKERS", "-1", "VISUALSEARCH_DECODE_WORKERS: must be at least 0 (got '-1')"),
        ("VISUALSEARCH_RATE_LIMIT", "lots", "VISUALSEARCH_RATE_LIMIT: must be a whole number (got 'lots')"),
        ("VISUALSEARCH_FETCH_TIMEOUT", "0", "VISUALSEARCH_FETCH_TIMEOUT: must be more than 0 (got '0')"),
        (
            "VISUALSEARCH_ALLOW_PRIVATE_URLS",
            "maybe",
            "VISUALSEARCH_ALLOW_PRIVATE_URLS: must be true or false (or 1/0, yes/no, on/off) (got 'maybe')",
        ),
        ("VISUALSEARCH_MODEL", "", "VISUALSEARCH_MODEL: must not be empty (got '')"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, raw: str, expected: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(tmp_path / "lib")
    assert str(caught.value) == expected
    assert isinstance(caught.value, VisualSearchError) and caught.value.code == "config_error"
    assert "\n" not in str(caught.value)


def test_several_bad_values_are_reported_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISUALSEARCH_DUPLICATE_POLICY", "maybe")
    monkeypatch.setenv("VISUALSEARCH_BATCH_SIZE", "0")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert "VISUALSEARCH_DUPLICATE_POLICY" in message and "VISUALSEARCH_BATCH_SIZE" in message


def test_bad_override_names_the_argument(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^batch_size: must be at least 1 \(got 0\)$"):
        Settings.from_env(tmp_path / "lib", batch_size=0)
    with pytest.raises(TypeError, match="no_such_setting"):
        Settings.from_env(tmp_path / "lib", no_such_setting=1)


def test_overrides_beat_env_and_none_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VISUALSEARCH_LIBRARY", str(tmp_path / "from-env"))
    monkeypatch.setenv("VISUALSEARCH_MODEL", "from-env-model")
    monkeypatch.setenv("VISUALSEARCH_RATE_LIMIT", "5")
    monkeypatch.setenv("VISUALSEARCH_DUPLICATE_POLICY", "maybe")  # overridden, so never checked
    monkeypatch.setenv("VISUALSEARCH_FOLDER_ROOTS", str(tmp_path / "env-root"))
    settings = Settings.from_env(
        tmp_path / "given",
        model=None,
        rate_limit_per_minute=9,
        duplicate_policy="allow",
        bind_host=None,
        folder_roots=(tmp_path / "given-root",),
        batch_size=4,
        decode_workers=2,
    )
    assert settings.library_dir == (tmp_path / "given").resolve()
    assert settings.model == "from-env-model"
    assert settings.rate_limit_per_minute == 9
    assert settings.duplicate_policy == "allow"
    assert settings.bind_host == "127.0.0.1"
    assert settings.folder_roots == ((tmp_path / "given-root").resolve(),)
    assert (settings.batch_size, settings.decode_workers) == (4, 2)
    # No explicit library: the variable's, expanded and resolved.
    assert Settings.from_env(None, duplicate_policy="warn").library_dir == (tmp_path / "from-env").resolve()


def test_library_dir_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.from_env(Path("~/lib")).library_dir == (tmp_path / "lib").resolve()


def test_cache_dir_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VISUALSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"


# --- the README table ---------------------------------------------------------------------------


def readme_settings_table() -> dict[str, dict[str, str]]:
    """Rows of the table in README's ``## Settings`` section, by variable name, cells by header."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Settings\n(.*?)(?=^## )", text, re.DOTALL | re.MULTILINE)
    assert section, "README.md has no '## Settings' section"
    lines = [line.strip() for line in section.group(1).splitlines() if line.strip().startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        assert len(cells) == len(header), line
        row = dict(zip(header, cells, strict=True))
        name = row["environment variable"].strip("`")
        assert name not in rows, f"{name} is listed twice"
        rows[name] = row
    return rows


def test_readme_lists_every_setting() -> None:
    rows = readme_settings_table()
    assert set(rows) == set(Settings.env_names().values()) | OUTSIDE_MODEL
    for name, row in rows.items():
        assert row["meaning"], f"{name} has no meaning in the README"


def _parse_like(default: Any, shown: str) -> Any:
    if isinstance(default, bool):
        return {"true": True, "false": False}[shown]
    return type(default)(shown)


def test_readme_defaults_match_the_model() -> None:
    rows = readme_settings_table()
    by_name = {name: field for field, name in Settings.env_names().items()}
    for name, row in rows.items():
        cell = row["default"]
        if name in DESCRIBED_DEFAULTS:
            words, value = DESCRIBED_DEFAULTS[name]
            assert cell == words, f"{name}: README says {cell!r}"
            if name in by_name:
                assert Settings.model_fields[by_name[name]].get_default(call_default_factory=True) == value, name
            continue
        default = Settings.model_fields[by_name[name]].get_default(call_default_factory=True)
        shown = re.match(r"`([^`]*)`", cell)
        assert shown, f"{name}: the README default {cell!r} should start with the value in backticks"
        assert _parse_like(default, shown.group(1)) == default, f"{name}: README says {cell!r}, model {default!r}"
