"""The REST API server (FastAPI): ``visualsearch serve``."""

from .app import create_app

__all__ = ["create_app"]
