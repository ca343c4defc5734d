"""The web page: a media library served at ``/`` that talks only to the REST API.

Server-rendered shell (Jinja2) plus one small ES module; no build step and
nothing loaded from a CDN, so the page works offline. The interactive API docs
at ``/docs`` are Swagger UI from the ``swagger-ui-bundle`` wheel, also served
locally. All searching goes
through ``/api/...``: the page holds no search logic of its own.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

import swagger_ui_bundle

from .. import __version__

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def page(request: Request):
    server = request.app.state.server
    settings = server.settings
    return templates.TemplateResponse(request, "index.html", {
        "version": __version__,
        "require_keys": server.require_keys,
        "max_image_bytes": settings.max_image_bytes,
        "max_page_size": settings.max_page_size,
    }, headers={"Cache-Control": "no-cache"})


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request):
    """Swagger UI from the bundled package (FastAPI's default loads it from a CDN)."""
    return templates.TemplateResponse(request, "docs.html", {}, headers={"Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static/docs", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-static")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
