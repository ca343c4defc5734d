"""Typed dependencies: what a route needs, declared in its signature (FastAPI's own pattern).

Routes never reach into ``request.app.state``; they ask for the server state, the
settings or one service, and tests can override any of these with
``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..config import Settings
from ..services import AssetService, DuplicatesService, JobQueue, KeyService, Library, ModelService, SearchService
from .state import ServerState


def get_server(request: Request) -> ServerState:
    server: ServerState = request.app.state.server
    return server


ServerDep = Annotated[ServerState, Depends(get_server)]


def get_settings(server: ServerDep) -> Settings:
    return server.settings


def get_library(server: ServerDep) -> Library:
    return server.library


def get_assets(server: ServerDep) -> AssetService:
    return server.assets


def get_search(server: ServerDep) -> SearchService:
    return server.search


def get_duplicates(server: ServerDep) -> DuplicatesService:
    return server.duplicates


def get_jobs(server: ServerDep) -> JobQueue:
    return server.jobs


def get_keys(server: ServerDep) -> KeyService:
    return server.keys


def get_models(server: ServerDep) -> ModelService:
    return server.models


SettingsDep = Annotated[Settings, Depends(get_settings)]
LibraryDep = Annotated[Library, Depends(get_library)]
AssetsDep = Annotated[AssetService, Depends(get_assets)]
SearchDep = Annotated[SearchService, Depends(get_search)]
DuplicatesDep = Annotated[DuplicatesService, Depends(get_duplicates)]
JobsDep = Annotated[JobQueue, Depends(get_jobs)]
KeysDep = Annotated[KeyService, Depends(get_keys)]
ModelsDep = Annotated[ModelService, Depends(get_models)]
