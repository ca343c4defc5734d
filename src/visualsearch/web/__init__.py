"""The web page: a media library served at ``/`` that talks only to the REST API.

Server-rendered shell (Jinja2) plus one small ES module; no build step and
nothing loaded from a CDN, so the page works offline. All searching goes
through ``/api/...``: the page holds no search logic of its own.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

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


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
