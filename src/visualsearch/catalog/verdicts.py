"""Pixel-check verdicts of candidate copy pairs, kept by the pair's file digests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .schema import PairVerdictRow

if TYPE_CHECKING:
    from .store import Catalog


class VerdictRepository:
    """Reads and writes ``pair_verdicts``. Keys are ``(sha256, sha256)`` with the smaller first."""

    def __init__(self, catalog: Catalog):
        self._catalog = catalog

    def all(self, method: str) -> dict[tuple[str, str], bool]:
        """Every verdict of ``method`` (one row per checked pair: small next to the assets)."""
        query = select(PairVerdictRow.first_sha256, PairVerdictRow.second_sha256, PairVerdictRow.same).where(
            PairVerdictRow.method == method
        )
        with self._catalog.session() as s:
            return {(a, b): bool(same) for a, b, same in s.execute(query)}

    def add(self, method: str, verdicts: dict[tuple[str, str], bool]) -> None:
        """Stores new verdicts in one transaction; a pair already stored keeps its row."""
        if not verdicts:
            return
        rows = [
            {"first_sha256": a, "second_sha256": b, "method": method, "same": same} for (a, b), same in verdicts.items()
        ]
        with self._catalog.write_session() as s, s.begin():
            if s.get_bind().dialect.name == "sqlite":
                s.execute(sqlite_insert(PairVerdictRow).on_conflict_do_nothing(), rows)
            else:
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                s.execute(pg_insert(PairVerdictRow).on_conflict_do_nothing(), rows)

    def keep_only(self, method: str) -> int:
        """Forgets the verdicts of every other check version (they are never read again: a real
        library's catalog had grown to 130 MB of them); returns how many rows went."""
        with self._catalog.write_session() as s, s.begin():
            result = s.execute(delete(PairVerdictRow).where(PairVerdictRow.method != method))
            return int(getattr(result, "rowcount", 0) or 0)

    def forget(self) -> int:
        """Forgets every stored verdict (the next duplicates run checks every candidate pair again);
        returns how many rows went. The benchmark times the check on a workdir it re-uses this way."""
        with self._catalog.write_session() as s, s.begin():
            result = s.execute(delete(PairVerdictRow))
            return int(getattr(result, "rowcount", 0) or 0)
