"""How read text (OCR) and query words are cut into words, so both sides meet on the same form.

A word is a run of letters or digits of any script, case-folded and without accents
("Café" and "CAFE" are both ``cafe``; "24h" stays ``24h``). Single letters are left out:
OCR finds stray ones in textures (a "C" in a coin's rim), and a one-letter query word
would match half the library's signs.
"""

from __future__ import annotations

import re
import unicodedata

#: Letters and digits of any script; punctuation, spaces and underscores split words.
_WORD = re.compile(r"[^\W_]+")
#: Longest word kept (the column's size); longer runs are cut, on both sides alike.
MAX_WORD = 64


def normalise_text(text: str) -> str:
    """Case-folded, accents removed (NFKD then dropping combining marks)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words_of(text: str) -> list[str]:
    """The distinct words of ``text``, in reading order (see the module docstring)."""
    found = (w[:MAX_WORD] for w in _WORD.findall(normalise_text(text)))
    return list(dict.fromkeys(w for w in found if len(w) >= 2 or w.isdigit()))
