"""The web page: a media library served at ``/`` that talks only to the REST API.

Server-rendered shell (Jinja2) plus one small ES module; no build step and
nothing loaded from a CDN, so the page works offline. The interactive API docs
at ``/docs`` are Swagger UI from the ``swagger-ui-bundle`` wheel, also served
locally. All searching goes
through ``/api/...``: the page holds no search logic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from .. import __version__

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


@dataclass(frozen=True)
class PageConfig:
    """What the page needs to know about the server it talks to (given by the API app)."""

    require_keys: bool
    max_image_bytes: int
    max_page_size: int


def install(app: FastAPI, config: PageConfig) -> None:
    """Serve the page at ``/``, Swagger UI at ``/docs`` and the static files."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    def page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            "index.html",
            {
                "version": __version__,
                "require_keys": config.require_keys,
                "max_image_bytes": config.max_image_bytes,
                "max_page_size": config.max_page_size,
            },
            headers={"Cache-Control": "no-cache"},
        )

    @router.get("/docs", response_class=HTMLResponse)
    def docs(request: Request) -> HTMLResponse:
        """Swagger UI from the bundled package (FastAPI's default loads it from a CDN)."""
        return templates.TemplateResponse(request, "docs.html", {}, headers={"Cache-Control": "no-cache"})

    app.include_router(router)
    app.mount("/static/docs", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-static")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
