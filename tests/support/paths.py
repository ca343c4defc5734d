"""Where the repository and the shared evaluation photos are."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EVAL = Path(os.environ.get("VISUALSEARCH_EVAL_DIR", REPO.parent / "shared" / "eval"))
