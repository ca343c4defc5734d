"""Vector index backends by name, so a deployment picks one by configuration (``vector_backend``).

``auto`` means pgvector when the catalog is PostgreSQL (vectors searched where they
are stored) and local files otherwise. A new backend registers a factory here and
implements :class:`~.base.IndexBackend`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..catalog import Catalog
from ..config import Settings
from ..errors import ConfigError
from .base import IndexBackend

#: factory(catalog, settings, model_id, space) -> backend
BackendFactory = Callable[[Catalog, Settings, str, str], IndexBackend]


def _local(catalog: Catalog, settings: Settings, model_id: str, space: str) -> IndexBackend:
    from .manager import IndexManager

    return IndexManager(catalog, settings.index_dir, model_id, space, settings.ann_threshold)


def _pgvector(catalog: Catalog, settings: Settings, model_id: str, space: str) -> IndexBackend:
    if not catalog.in_database_vectors:
        raise ConfigError("the pgvector backend needs a PostgreSQL catalog (VISUALSEARCH_DATABASE_URL)")
    from .pgvector import PgVectorManager

    return PgVectorManager(catalog, model_id, space)


def _milvus(catalog: Catalog, settings: Settings, model_id: str, space: str) -> IndexBackend:
    from .milvus import MilvusManager  # pymilvus is an optional extra: imported only when chosen

    uri = settings.milvus_uri or str(settings.library_dir / "milvus.db")
    return MilvusManager(catalog, uri, settings.index_dir, model_id, space)


BACKENDS: dict[str, BackendFactory] = {"local": _local, "pgvector": _pgvector, "milvus": _milvus}


def backend_name(catalog: Catalog, settings: Settings) -> str:
    """The configured backend, with ``auto`` resolved."""
    name = settings.vector_backend
    if name == "auto":
        return "pgvector" if catalog.in_database_vectors else "local"
    if name not in BACKENDS:
        raise ConfigError(f"unknown vector backend {name!r}: choose auto, {', '.join(BACKENDS)}")
    return name


def open_backend(catalog: Catalog, settings: Settings, model_id: str, space: str) -> IndexBackend:
    return BACKENDS[backend_name(catalog, settings)](catalog, settings, model_id, space)
