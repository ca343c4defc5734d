"""Words read in pictures (OCR): stored with the asset's batch, looked up by word."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from .collation import bytewise
from .schema import INDEXED, AssetRow, AssetText, AssetWord
from .words import words_of

if TYPE_CHECKING:
    from .store import Catalog

#: A query word read in more pictures than this is not used (see :meth:`TextRepository.matching`).
MAX_ASSETS_PER_WORD = 5000


def put_texts(s: Session, rows: list[tuple[int, str, str]]) -> None:
    """Replace the read text and words of each ``(asset_id, reader, text)``, in the caller's transaction."""
    ids = [asset_id for asset_id, _, _ in rows]
    for start in range(0, len(ids), 500):
        delete_texts(s, ids[start : start + 500])
    s.add_all(AssetText(asset_id=asset_id, reader=reader, text=text) for asset_id, reader, text in rows)
    s.add_all(AssetWord(asset_id=asset_id, word=word) for asset_id, _, text in rows for word in words_of(text))


def delete_texts(s: Session, ids: list[int]) -> None:
    """Forget the read text of these assets (they are being removed), in the caller's transaction."""
    s.execute(delete(AssetWord).where(AssetWord.asset_id.in_(ids)))
    s.execute(delete(AssetText).where(AssetText.asset_id.in_(ids)))


class TextRepository:
    """Reads ``asset_texts`` and ``asset_words``; writes go with the asset's batch (:func:`put_texts`)."""

    def __init__(self, catalog: Catalog):
        self._catalog = catalog

    def matching(self, words: Iterable[str], prefix: bool = False) -> dict[int, set[str]]:
        """Indexed assets whose read text has any of ``words`` (normalised), with the words each has.

        With ``prefix``, a read word that starts with one of ``words`` counts too ("debian" in a
        logo's "debianedu"); the lookup is a range on the word index, in code point order
        (``word >= w AND word < w'``; PostgreSQL has a ``COLLATE "C"`` index for it).
        A word found in more than :data:`MAX_ASSETS_PER_WORD` pictures is left out: it tells the
        pictures apart too little (a watermark, "the"), and keeping only some would favour them.
        """
        unique = list(dict.fromkeys(words))
        if not unique:
            return {}
        found: dict[int, set[str]] = {}
        with self._catalog.session() as s:
            for word in unique:
                condition: ColumnElement[bool]
                if prefix:
                    after = word[:-1] + chr(ord(word[-1]) + 1)  # the first string past every word starting so
                    column = bytewise(AssetWord.word)
                    condition = (column >= word) & (column < after)
                else:
                    condition = AssetWord.word == word
                query = (
                    select(AssetWord.asset_id)
                    .join(AssetRow, AssetRow.id == AssetWord.asset_id)
                    .where(condition, AssetRow.status == INDEXED)
                    .distinct()
                    .limit(MAX_ASSETS_PER_WORD + 1)  # never more rows than it takes to tell "too many"
                )
                ids = list(s.scalars(query))
                if len(ids) <= MAX_ASSETS_PER_WORD:
                    for asset_id in ids:
                        found.setdefault(asset_id, set()).add(word)
        return found

    def any(self) -> bool:
        """Whether any picture's read text has a word (searches skip word lookups until one has)."""
        with self._catalog.session() as s:
            return s.scalar(select(AssetWord.asset_id).limit(1)) is not None

    def of(self, asset_ids: Iterable[int]) -> dict[int, str]:
        """The read text of each asset that has been read (empty text: read, nothing found)."""
        ids = list(asset_ids)
        out: dict[int, str] = {}
        with self._catalog.session() as s:
            for start in range(0, len(ids), 500):
                query = select(AssetText.asset_id, AssetText.text).where(
                    AssetText.asset_id.in_(ids[start : start + 500])
                )
                out.update((asset_id, text) for asset_id, text in s.execute(query))
        return out

    @staticmethod
    def _unread_by(reader: str) -> ColumnElement[bool]:
        """Indexed assets not read by ``reader`` (never read, or by another)."""
        read_by = select(AssetText.asset_id).where(AssetText.reader == reader)
        return (AssetRow.status == INDEXED) & AssetRow.id.not_in(read_by)

    def unread(self, reader: str) -> list[tuple[int, str, str | None, str]]:
        """(id, source, kept copy's path, sha256) of indexed assets not read by ``reader`` (never read,
        or by another)."""
        query = (
            select(AssetRow.id, AssetRow.source, AssetRow.path, AssetRow.sha256)
            .where(self._unread_by(reader))
            .order_by(AssetRow.id)
        )
        with self._catalog.session() as s:
            return [(i, src, path, sha or "") for i, src, path, sha in s.execute(query)]

    def count_unread(self, reader: str) -> int:
        """How many indexed assets ``reader`` has not read (see :meth:`unread`)."""
        with self._catalog.session() as s:
            return int(s.scalar(select(func.count()).where(self._unread_by(reader))) or 0)

    def save(self, rows: list[tuple[int, str, str]], sha256: dict[int, str] | None = None) -> int:
        """Store read text of assets already in the catalog (reading an existing library), one transaction.

        With ``sha256`` (asset id -> digest of the bytes that were read), text read from bytes the
        catalog no longer has (the file was re-indexed meanwhile) is not stored. Returns rows stored.
        """
        with self._catalog.write_session() as s, s.begin():
            # Locked until the text is in (PostgreSQL; SQLite's write transaction already excludes
            # other writers): an index run that rewrites one of these assets waits, then finds the
            # text stale and drops it, instead of slipping in between the check and the write.
            query = (
                select(AssetRow.id, AssetRow.sha256)
                .where(AssetRow.id.in_([r[0] for r in rows]))
                .order_by(AssetRow.id)
                .with_for_update()
            )
            current = {asset_id: digest for asset_id, digest in s.execute(query)}
            keep = [r for r in rows if r[0] in current and (sha256 is None or sha256.get(r[0]) == current[r[0]])]
            put_texts(s, keep)
        return len(keep)

    def count(self) -> tuple[int, int]:
        """(assets read, assets with at least one word)."""
        with self._catalog.session() as s:
            read = s.scalar(select(func.count()).select_from(AssetText)) or 0
            worded = s.scalar(select(func.count(func.distinct(AssetWord.asset_id)))) or 0
        return int(read), int(worded)
