"""Adding images that arrive one by one (uploads, URLs) rather than from a folder walk.

Each file is checked (decodes, not too large, not already in the library),
moved into the library's own store, embedded and recorded in batches; one bad
file only fails itself. The result of every file is reported, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from ..catalog import Asset, ImageRecord
from ..duplicates import matches_for
from ..errors import DecodeError, Duplicate, NearDuplicate, SourceChanged, VisualSearchError
from ..ingest.decode import DecodedImage, decode_bytes, read_file
from ..ingest.fetch import ImageFetcher
from ..ingest.pipeline import read_text_or_none
from ..models.ocr import reader_options
from .assets import preview_verifier
from .library import Library

#: progress(done, total, failed)
Progress = Callable[[int, int, int], None]


@dataclass
class Incoming:
    """One image waiting in staging, with what we know about where it came from."""

    staged: Path
    name: str
    origin: str = "upload"  # or "url"
    url: str | None = None
    tags: tuple[str, ...] = ()


@dataclass
class Outcome:
    name: str
    asset: Asset | None = None
    error: VisualSearchError | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def name_from_url(url: str) -> str:
    name = unquote(Path(urlsplit(url).path).name)
    return name or urlsplit(url).hostname or "image"


def add_incoming(
    library: Library,
    items: list[Incoming],
    progress: Progress | None = None,
    allow_duplicates: bool = False,
    near_duplicates: str | None = None,
    read_text: bool = True,
) -> list[Outcome]:
    """Ingest staged files in batches; staging files are consumed or removed either way.

    Identical bytes are refused unless ``allow_duplicates``. ``near_duplicates``
    ("warn", "reject", "allow"; default: the library's setting) says what to do
    with a near-duplicate of an image already in the library. With text reading on, the
    pictures' words are read here unless ``read_text`` is False: the server's upload requests
    leave that to a background job (:meth:`~.jobs.JobQueue.ensure_text_reading`), so a request
    does not wait seconds a picture for the reader.
    """
    policy = near_duplicates or library.settings.duplicate_policy
    settings = library.settings
    outcomes: list[Outcome] = []
    done = failed = 0
    for start in range(0, len(items), settings.batch_size):
        batch = items[start : start + settings.batch_size]
        ready: list[tuple[Incoming, DecodedImage, Outcome]] = []
        seen: dict[str, Outcome] = {}
        for item in batch:
            outcome = Outcome(item.name)
            outcomes.append(outcome)
            try:
                data = read_file(item.staged, settings.max_image_bytes)
                decoded = decode_bytes(data, **settings.decode_limits)
                existing = None if allow_duplicates else library.catalog.find_by_sha256(decoded.sha256)
                if existing is not None:
                    raise Duplicate(
                        f"identical to asset {existing.id} ({existing.name or existing.source})", existing.id
                    )
                if item.origin == "url" and item.url:
                    previous = library.catalog.get_by_sources([item.url]).get(item.url)
                    if previous is not None and previous.status == "indexed" and previous.sha256 != decoded.sha256:
                        raise SourceChanged(
                            f"asset {previous.id} was added from this URL and the image there has "
                            "changed since; the library keeps the image it has (delete asset "
                            f"{previous.id} first to add the new one)",
                            previous.id,
                        )
                if decoded.sha256 in seen:
                    raise Duplicate(f"identical to {seen[decoded.sha256].name} in the same upload", -1)
                seen[decoded.sha256] = outcome
                ready.append((item, decoded, outcome))
            except VisualSearchError as exc:
                outcome.error = exc
                item.staged.unlink(missing_ok=True)
            except OSError as exc:
                outcome.error = DecodeError(f"could not read the upload: {exc}")
                item.staged.unlink(missing_ok=True)
        if ready:
            _store(library, ready, policy, read_text)
        done += len(batch)
        failed += sum(1 for o in outcomes[start:] if not o.ok)
        if progress:
            progress(done, len(items), failed)
    library.sync_indexes()
    return outcomes


def _store(
    library: Library, ready: list[tuple[Incoming, DecodedImage, Outcome]], policy: str, read_text: bool = True
) -> None:
    verifier = preview_verifier(library)  # near-duplicate candidates must pass the pixel check
    embedder, media = library.embedder, library.media
    try:
        vectors = embedder.encode_images([d.image for _, d, _ in ready])
    except Exception as exc:  # the model failing on one batch must not lose the others
        for item, _, outcome in ready:
            outcome.error = DecodeError(f"embedding failed: {exc}")
            item.staged.unlink(missing_ok=True)
        return
    space = embedder.similarity_space
    kept = []
    for n, (item, decoded, outcome) in enumerate(ready):
        if policy != "allow":
            matches = [
                m
                for m in matches_for(
                    library.catalog, library.similarity_index, decoded, vectors[space][n], verifier=verifier
                )
                if m.kind != "exact_bytes"
            ]
            if matches and policy == "reject":
                best = matches[0]
                outcome.error = NearDuplicate(
                    f"a {'copy with the same pixels' if best.kind == 'same_pixels' else 'near-duplicate'} of asset "
                    f"{best.asset.id} ({best.asset.name or best.asset.source}) is already in the library",
                    best.asset.id,
                    best.similarity,
                )
                item.staged.unlink(missing_ok=True)
                continue
            if matches:
                outcome.extra["near_duplicates"] = [
                    {"asset_id": m.asset.id, "similarity": m.similarity, "kind": m.kind} for m in matches
                ]
        kept.append(n)
    ready = [ready[n] for n in kept]
    vectors = {sp: v[kept] for sp, v in vectors.items()}
    if not ready:
        return
    records: list[tuple[ImageRecord, dict[str, np.ndarray]]] = []
    ocr = reader_options(library.settings) if read_text else None
    if ocr is not None:  # read here, one picture at a time: with every core
        ocr = ocr.on_every_core()
    for n, (item, decoded, _) in enumerate(ready):
        text = None
        if ocr is not None:  # read from the staged bytes, before they move into the library
            data = read_file(item.staged, library.settings.max_image_bytes)
            text = read_text_or_none(data, decoded, ocr, **library.settings.decode_limits)
        stored = media.keep(item.staged, decoded.sha256, decoded.format)
        media.make_thumbnail(decoded.sha256, decoded.image)
        source = item.url if item.origin == "url" and item.url else str(stored)
        record = ImageRecord(
            source,
            decoded.sha256,
            decoded.width,
            decoded.height,
            decoded.format,
            decoded.byte_size,
            None,
            name=item.name,
            origin=item.origin,
            path=str(stored),
            tags=item.tags,
            pixel_sha256=decoded.pixel_sha256,
            phash=decoded.phash,
            text=text,
            reader=ocr.reader_id if ocr is not None and text is not None else None,
        )
        records.append((record, {space: vectors[space][n] for space in vectors}))
    try:
        library.catalog.write_batch(records, [], embedder.model_id)
    except Exception:
        for record, _ in records:  # nothing half-added: the catalog never saw these files
            if library.catalog.find_by_sha256(record.sha256) is None:
                media.discard_original(record.path)
        raise
    by_source = library.catalog.get_by_sources([r.source for r, _ in records])
    for (record, _), (_, _, outcome) in zip(records, ready, strict=True):
        outcome.asset = by_source.get(record.source)


def fetch_to_staging(library: Library, url: str) -> Incoming:
    """Fetch ``url`` with the hardened fetcher and stage its bytes."""
    s = library.settings
    fetched = ImageFetcher(
        max_bytes=s.max_image_bytes,
        allow_private=s.allow_private_urls,
        timeout=s.fetch_timeout,
        max_redirects=s.max_redirects,
    ).fetch(url)
    staged = library.media.stage([fetched.data], s.max_image_bytes)
    return Incoming(staged, name_from_url(fetched.url), origin="url", url=url)
