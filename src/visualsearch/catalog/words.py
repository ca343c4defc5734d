"""How read text (OCR) and query words are cut into words, so both sides meet on the same form.

A word is a run of letters or digits of any script, case-folded and without accents
("Café" and "CAFE" are both ``cafe``; "24h" stays ``24h``). Single characters are left out:
OCR finds stray ones in textures (a "C" in a coin's rim, an "8" in a cup's reflection), and a
one-character query word would match half the library's signs and receipts.
"""

from __future__ import annotations

import re
import unicodedata

#: Letters and digits of any script; punctuation, spaces and underscores split words.
_WORD = re.compile(r"[^\W_]+")
#: Longest word kept (the column's size); longer runs are cut, on both sides alike.
MAX_WORD = 64


def normalise_text(text: str) -> str:
    """Case-folded, accents removed (NFKD then dropping combining marks), and invisible format
    characters (zero-width spaces pasted with a query) dropped."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c) != "Cf")


#: Where letters meet digits ("debian12", "24h", "a4"): the parts are words too.
_PARTS = re.compile(r"\d+|[^\W\d_]+")


def words_of(text: str) -> list[str]:
    """The distinct words of ``text``, in reading order (see the module docstring).

    A run that mixes letters and digits also gives its parts: a logo's "debian12" is found by
    "debian" and by "12", and "24h" by "24".
    """
    found: list[str] = []
    for run in _WORD.findall(normalise_text(text)):
        found.append(run[:MAX_WORD])
        parts = _PARTS.findall(run)
        if len(parts) > 1:
            found.extend(p[:MAX_WORD] for p in parts)
    return list(dict.fromkeys(w for w in found if len(w) >= 2))
