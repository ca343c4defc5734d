"""Which words of a text query are looked up in the text read in pictures (OCR).

Read text is matched word for word (:func:`visualsearch.catalog.words.words_of` on both
sides), so a query finds a sign that says what it asks for: "bakery" finds a shop sign
reading BAKERY, "a poster that says jazz festival" finds JAZZ FESTIVAL. Words that say
*how* to look, not *what* ("a", "the", "says", "written"), are left out: a picture that
happens to show "THE" must not match every query with "the" in it.

A picture's word score is the share of the query's looked-up words its text has; the
search adds it, weighted, to the picture's other scores (services.search).
"""

from __future__ import annotations

from ..catalog.words import words_of
from .query import TextQuery

#: Function words, and the words people use to say a picture has text in it.
STOPWORDS = frozenset(
    """
    a an the of on in at to for from by with without and or but not no is are was be it its this that these
    those there here as into onto over under up out off about near than then so very my your our their his her
    some any all de la le el
    says say saying said reads read reading written writing text word words letters lettering caption
    labelled labeled titled called named showing shows show picture photo image
    """.split()
)


def query_words(text: str) -> list[str]:
    """The words of ``text`` to look up in pictures' read text, in order, each once."""
    return [w for w in words_of(text) if w not in STOPWORDS]


#: Words of one query looked up at most (each costs a lookup; a 1,000-character query has ~170).
MAX_QUERY_WORDS = 32


def split_words(parsed: TextQuery) -> tuple[dict[str, float], list[tuple[list[str], float]]]:
    """The positive clauses' words with their clause's weight (``bakery^2``), and each left-out
    clause's words with its weight. A left-out phrase counts word by word."""
    wanted: dict[str, float] = {}
    for clause in parsed.positive:
        for word in query_words(clause.text):
            if len(wanted) < MAX_QUERY_WORDS or word in wanted:
                wanted[word] = max(wanted.get(word, 0.0), clause.weight)
    unwanted = [(words[:MAX_QUERY_WORDS], c.weight) for c in parsed.negative if (words := query_words(c.text))]
    return wanted, unwanted
