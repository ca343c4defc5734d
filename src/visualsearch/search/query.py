"""The text query language: phrases to find, phrases to avoid, and how much each counts.

A query is one or more *clauses*. Without operators the whole text is one clause, so
"dog on a beach" stays one sentence for the text encoder (splitting it into words would
lose what the sentence means). Operators start new clauses:

- ``-word`` or ``-"a phrase"`` (or ``- phrase`` up to the next operator): leave out what
  looks like it: ``beach -people``, ``cat -"black cat"``;
- ``+word`` / ``+ phrase``: also look for it: ``red car + night``;
- ``^2`` or ``^0.5`` at the end of a clause weighs it: ``beach^2 + sunset^0.5 -people``.
  Weights are between 0 and 10; the default is 1, and 0.5 for a left-out part
  (:data:`NEGATIVE_WEIGHT`, chosen by measurement).

Quotes keep a phrase together and let a query contain a literal ``-`` or ``+`` ("t-shirt"
is one word either way: an operator only counts at the start of a word). The query vector
is the weighted sum of the positive clauses' text vectors minus the weighted negative ones
(as rclip and "king - man + woman" arithmetic do), normalised; searches then rank by cosine
similarity to it as before. :func:`parse` only reads the text; combining the vectors is
:func:`combine`, so the parsing is tested without a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInput

MAX_WEIGHT = 10.0
#: What a left-out part counts unless weighted. Measured on the scenes development set
#: (benchmarks/query_syntax.py, bundled model, 874 query pairs): at 1.0 the left-out images
#: moved down in 74% of pairs but the wanted ones' first place fell from 17.4% to 10.3%; at
#: 0.5, 67% and 14.2%; at 0.3, 62% and 15.7%. Half is the balance; `-people^1` asks for more.
NEGATIVE_WEIGHT = 0.5
MAX_CLAUSES = 16
_WEIGHT = re.compile(r"^(.*?)\^(\d+(?:\.\d+)?|\.\d+)$", re.S)
# A word: a quoted phrase (with its sign) or a run of non-space characters.
_TOKEN = re.compile(r'([+-]?)"([^"]*)"(\^[\d.]+)?|(\S+)')


@dataclass(frozen=True)
class Clause:
    text: str
    weight: float = 1.0
    negative: bool = False

    @property
    def default_weight(self) -> bool:
        return self.weight == (NEGATIVE_WEIGHT if self.negative else 1.0)


@dataclass(frozen=True)
class TextQuery:
    clauses: tuple[Clause, ...]

    @property
    def positive(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if not c.negative)

    @property
    def negative(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if c.negative)

    @property
    def plain(self) -> bool:
        """One positive clause of weight 1: the query is just a sentence."""
        return len(self.clauses) == 1 and not self.clauses[0].negative and self.clauses[0].weight == 1.0

    def describe(self) -> str:
        """How the query was understood, e.g. ``beach (x2) + sunset, without people``."""

        def one(c: Clause) -> str:
            return c.text + ("" if c.default_weight else f" (x{c.weight:g})")

        text = " + ".join(one(c) for c in self.positive)
        if self.negative:
            text += ", without " + ", ".join(one(c) for c in self.negative)
        return text


_BAD_WEIGHT = re.compile(r"\^\S*$")


def _weighted(text: str, default: float = 1.0) -> tuple[str, float]:
    match = _WEIGHT.match(text.strip())
    if not match:
        bad = _BAD_WEIGHT.search(text.strip())
        if bad:  # "cat^-1", "cat^1e3", "cat^": a weight was meant, but it is not one
            raise InvalidInput(
                f"a weight is a plain number above 0 and at most {MAX_WEIGHT:g}, e.g. ^2 or ^0.5 (got {bad.group(0)})"
            )
        return text.strip(), default
    weight = float(match.group(2))
    if not 0 < weight <= MAX_WEIGHT:
        raise InvalidInput(f"a weight must be above 0 and at most {MAX_WEIGHT:g} (got ^{match.group(2)})")
    return match.group(1).strip(), weight


#: The longest query any surface takes (the REST schema uses it too). The text encoder reads 256
#: tokens at most, so longer text adds nothing but cost; a bigger limit would only let a client
#: make every search slow.
MAX_QUERY_CHARS = 1000


def parse(query: str) -> TextQuery:
    """Read ``query`` into clauses; raises :class:`InvalidInput` for a query with nothing to look for
    or longer than :data:`MAX_QUERY_CHARS`."""
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(f"the query is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,}")
    clauses: list[Clause] = []
    words: list[str] = []
    negative = False

    def close() -> None:
        nonlocal words
        if words:
            text, weight = _weighted(" ".join(words), NEGATIVE_WEIGHT if negative else 1.0)
            if text:
                clauses.append(Clause(text, weight, negative))
        words = []

    for match in _TOKEN.finditer(query):
        sign, phrase, weight, word = match.groups()
        if phrase is not None:  # a quoted phrase: with a sign it is a clause of its own
            if sign:
                close()
                negative = sign == "-"
            words.append(phrase + (weight or ""))
            if sign:
                close()
                negative = False
            continue
        if word in ("+", "-"):
            close()
            negative = word == "-"
        elif word[0] in "+-" and len(word) > 1 and not words_continue_number(word):
            close()
            negative = word[0] == "-"
            words.append(word[1:])
            if word[0] == "-":  # -word is one word: "beach -people sunset" avoids people, finds sunset
                close()
                negative = False
        else:
            words.append(word)
    close()
    if len(clauses) > MAX_CLAUSES:
        raise InvalidInput(f"a query may have at most {MAX_CLAUSES} parts")
    if not any(not c.negative for c in clauses):
        if clauses:
            raise InvalidInput("the query only says what to leave out; add what to look for (e.g. beach -people)")
        raise InvalidInput("the text query is empty")
    return TextQuery(tuple(clauses))


def words_continue_number(word: str) -> bool:
    """``-5`` or ``+3.5`` is a number in the sentence ("-5 degrees"), not an operator."""
    return bool(re.fullmatch(r"[+-]\d+(?:[.,]\d+)?\S*", word))


def combine(query: TextQuery, vectors: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """The query vector from the clauses' text vectors (in clause order), plus an optional ``base``.

    ``base`` is a reference image's vector in the same space ("similar to asset 42 but at
    night"): it counts like a positive clause of weight 1.
    """
    total = np.zeros(vectors.shape[1], dtype=np.float64) if base is None else np.asarray(base, np.float64).copy()
    for clause, vector in zip(query.clauses, vectors, strict=True):
        total += (-clause.weight if clause.negative else clause.weight) * vector
    norm = np.linalg.norm(total)
    if norm < 1e-9:
        raise InvalidInput("the parts of this query cancel each other out; change or drop a part")
    out: np.ndarray = (total / norm).astype(np.float32)
    return out
