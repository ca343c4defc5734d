"""The FastAPI application: ``create_app(settings)`` and everything it serves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .. import __version__, web
from ..config import Settings
from ..models import Embedder
from . import errors
from .guard import HostPolicy, RequestGuard
from .limits import BodySizeLimit
from .memory import return_large_buffers
from .routes import assets, duplicates, jobs, models, search, system
from .state import ServerState
from .uploads import fill_limits

#: JSON bodies are small; only the upload routes accept big ones.
JSON_BODY_LIMIT = 1024 * 1024
MULTIPART_OVERHEAD = 1024 * 1024

DESCRIPTION = """Find images by describing them, or by another image.

Every search returns results ranked best first, each with its similarity `score`.
Errors always have the shape `{"error": {"code": ..., "message": ...}}`.
Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>`
(keys come from `visualsearch keys create`), unless the server runs in local
single-user mode.
"""


def create_app(
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    loader: Callable[[str], Embedder] | None = None,
    require_keys: bool = True,
) -> FastAPI:
    """The ASGI app. ``embedder`` / ``loader`` replace the configured model / model loading (tests)."""
    settings = settings or Settings.from_env()
    return_large_buffers()  # a server decodes big images on many threads: give the memory back
    server = ServerState(settings, embedder=embedder, loader=loader, require_keys=require_keys)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        server.start()
        try:
            yield
        finally:
            server.stop()

    # /docs is served by the web package from a bundled Swagger UI; ReDoc would need a CDN.
    app = FastAPI(
        title="visualsearch",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = server
    errors.install(app)
    for router in (system.router, search.router, assets.router, duplicates.router, jobs.router, models.router):
        app.include_router(router)
    web.install(
        app,
        web.PageConfig(
            require_keys=require_keys, max_image_bytes=settings.max_image_bytes, max_page_size=settings.max_page_size
        ),
    )

    def openapi() -> dict[str, Any]:
        """The schema, with this server's limits written into the descriptions that mention them."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = fill_limits(schema, settings.max_image_bytes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    def limit_for(method: str, path: str) -> int:
        if method == "POST" and path in ("/api/search/image", "/api/duplicates/check"):
            return settings.max_image_bytes + MULTIPART_OVERHEAD
        if method == "POST" and path == "/api/assets":
            return settings.max_request_bytes
        return JSON_BODY_LIMIT

    app.add_middleware(BodySizeLimit, limit_for=limit_for)
    # Added last, so it runs first: a foreign Host or origin is refused before anything else.
    hosts = HostPolicy(settings.allowed_hosts, bind_host=settings.bind_host, strict=not require_keys)
    app.add_middleware(RequestGuard, hosts=hosts)
    return app
