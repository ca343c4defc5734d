"""Shared scaffolding of the page tests: a page that fails on JavaScript errors, a tiny server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.embedders import TinyEmbedder
from tests.support.images import gradient_image
from tests.support.live import LiveServer
from visualsearch.api import create_app
from visualsearch.config import Settings


@contextmanager
def open_page(browser: Any, url: str, wait_for: str | None = ".card img", **context_options: Any) -> Iterator[Any]:
    """A fresh browser context on ``url`` (by default once the library grid loaded: ``wait_for``, or
    None for views without it); JavaScript errors fail the test.

    bypass_csp: Playwright's wait_for_function evaluates strings in the page, which the page's own
    CSP forbids; test_the_page_works_under_its_content_security_policy runs with the CSP enforced.
    """
    context = browser.new_context(bypass_csp=True, **context_options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    try:
        if wait_for:
            page.wait_for_selector(wait_for)
        yield page
    finally:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@contextmanager
def tiny_server(root: Path, pictures: int, *, require_keys: bool = False) -> Iterator[LiveServer]:
    """A live server on a library of ``pictures`` synthetic images and the tiny test model."""
    folder = root / "pictures"
    folder.mkdir(parents=True)
    for i in range(pictures):
        gradient_image(i, (120, 90)).save(folder / f"g{i:02}.png")
    app = create_app(Settings.from_env(root / "lib"), embedder=TinyEmbedder(), require_keys=require_keys)
    app.state.server.library.index_folder(folder)
    with LiveServer(app) as server:
        server.wait_ready()
        yield server
