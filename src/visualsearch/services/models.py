"""Choosing a model: the curated list, downloading one, switching the library to it, removing one.

``use`` downloads (resumably, verified), records the choice in the catalog, and leaves
the move itself to re-embedding (:mod:`.reembed`): searches keep using the current
model's vectors until every image has one from the new model, then switch in one
catalog write. The CLI runs that re-embedding in the foreground with a progress bar;
the server queues it as a background job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import default_cache_dir
from ..errors import ConfigError, ModelUnavailable, NotFound
from ..models import hub, zoo
from .library import Library


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``models list`` / ``GET /api/models``."""

    name: str
    family: str
    loader: str
    dim: int
    download_mb: int
    languages: str
    coco_r1: float | None
    flickr_r1: float | None
    source: str
    pick: str
    licence: str
    repo: str | None
    installed: bool
    #: Bytes of an interrupted download that ``use`` will resume from.
    partial_bytes: int
    disk_bytes: int
    #: Measured on this kind of machine by benchmarks/models.py (images/s, 2 CPU cores), if measured.
    images_per_s: float | None
    text_ms: float | None
    #: The model searches use now / the one the library is moving to (or uses).
    active: bool
    requested: bool


class ModelService:
    def __init__(self, library: Library, cache_dir: Path | None = None):
        self.library = library
        self.cache_dir = cache_dir or default_cache_dir()

    @property
    def store(self) -> Path:
        return hub.store_dir(self.cache_dir)

    def card(self, name: str) -> zoo.ModelCard:
        card = zoo.card(name)
        if card is None:
            known = ", ".join(c.name for c in zoo.CARDS)
            raise NotFound(f"no model named {name!r}; the curated models are: {known}")
        return card

    def check_usable(self, name: str) -> zoo.ModelCard:
        """Refuse before any download what could not be used after it (a pinned model, a missing extra)."""
        card = self.card(name)
        self.library.check_can_request(name)
        missing = zoo.missing_extra(card)
        if missing:
            raise ModelUnavailable(missing)
        return card

    def info(self, card: zoo.ModelCard) -> ModelInfo:
        speed = zoo.measured_speeds().get(card.name, {})
        installed = card.repo is None or hub.installed_manifest(self.cache_dir, card.name) is not None
        return ModelInfo(
            name=card.name,
            family=card.family,
            loader=card.loader,
            dim=card.dim,
            download_mb=card.download_mb,
            languages=card.languages,
            coco_r1=card.coco_r1,
            flickr_r1=card.flickr_r1,
            source=zoo.SOURCES[card.source],
            pick=card.pick,
            licence=card.licence,
            repo=card.repo,
            installed=installed,
            partial_bytes=0 if card.repo is None else hub.partial_bytes(self.cache_dir, card.name),
            disk_bytes=0 if card.repo is None else hub.disk_bytes(self.cache_dir, card.name),
            images_per_s=speed.get("images_per_s"),
            text_ms=speed.get("text_ms"),
            active=card.name == self.library.active_model_name,
            requested=card.name == self.library.settings.model,
        )

    def list(self) -> list[ModelInfo]:
        return [self.info(card) for card in zoo.CARDS]

    def needs_download(self, name: str) -> bool:
        """Whether `use` would download (False for the bundled or an installed model); refuses a pinned switch."""
        card = self.check_usable(name)
        return card.repo is not None and hub.installed_manifest(self.cache_dir, name) is None

    def download(self, name: str, progress: hub.Progress | None = None) -> ModelInfo:
        """Fetch a curated model's files unless they are all here already (then no network is used)."""
        card = self.card(name)
        if card.repo is not None and hub.installed_manifest(self.cache_dir, name) is None:
            hub.download(hub.plan_download(card), self.cache_dir, progress)
        return self.info(card)

    def use(self, name: str, progress: hub.Progress | None = None) -> ModelInfo:
        """Download ``name`` if needed and make it the library's requested model (re-embedding follows)."""
        self.check_usable(name)
        self.download(name, progress)
        self.library.request_model(name)
        return self.info(self.card(name))

    def remove(self, name: str) -> bool:
        """Delete a downloaded model's files (not one the library uses or is moving to)."""
        card = self.card(name)
        if card.repo is None:
            raise ConfigError(f"{name} comes with visualsearch and cannot be removed")
        if name in (self.library.active_model_name, self.library.settings.model):
            raise ConfigError(
                f"{name} is the library's model; switch to another first (`visualsearch models use {zoo.DEFAULT_NAME}`)"
            )
        return hub.remove_model(self.cache_dir, name)
