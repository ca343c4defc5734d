"""Embedding models behind one interface (:class:`Embedder`)."""

from .base import ATTRIBUTES, SEMANTIC, VISUAL, Embedder, l2_normalize
from .registry import load_embedder

__all__ = ["ATTRIBUTES", "Embedder", "SEMANTIC", "VISUAL", "l2_normalize", "load_embedder"]
