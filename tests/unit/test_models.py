"""Models: the bundled default (real weights) and the CLIP loading path (tiny random model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.support.images import gradient_image
from tests.support.paths import TEST_PHOTOS
from tests.support.tiny_models import build_tiny_clip
from visualsearch.errors import ConfigError
from visualsearch.models import SEMANTIC, VISUAL, load_embedder

# What the default model sees in each test photo, verified when the set was made (see SOURCES.md there).
LABELS = json.loads((TEST_PHOTOS / "labels.json").read_text(encoding="utf-8"))


def test_test_photos_are_small_labelled_and_accounted_for(photos):
    """Every photo in src/visualsearch/demo/photos has labels and a row in SOURCES.md, and the set stays small."""
    assert sorted(LABELS) == [p.name for p in photos]
    assert all(label["subject"] for label in LABELS.values())
    sources = (TEST_PHOTOS / "SOURCES.md").read_text(encoding="utf-8")
    assert [p.name for p in photos if f"| `{p.name}` |" not in sources] == []
    assert sum(p.stat().st_size for p in photos) < 1_200_000
    for p in photos:
        with Image.open(p) as im:
            assert im.format == "JPEG" and max(im.size) <= 480 and "exif" not in im.info, p.name


@pytest.mark.slow  # the real model
def test_default_model_spaces_are_normalised(embedder, photos):
    images = [Image.open(p).convert("RGB") for p in photos[:3]]
    out = embedder.encode_images(images)
    assert out[SEMANTIC].shape == (3, 384) and out[VISUAL].shape == (3, 1280)
    for v in out.values():
        assert v.dtype == np.float32
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    texts = embedder.embed_texts(["a dog", "a cat"])
    assert texts.shape == (2, 384) and np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert embedder.similarity_space == VISUAL


@pytest.mark.slow  # the real model
def test_default_model_classifies_real_photos(embedder, photos):
    """The backbone is loaded correctly: each labelled photo has its ImageNet classes in its top 5."""
    from visualsearch.models.imagenet_vocab import class_names

    labelled = {p: LABELS[p.name]["imagenet_top5"] for p in photos if LABELS[p.name]["imagenet_top5"]}
    assert {"cat-chelsea.jpg", "coffee-cup.jpg", "ladybird-on-leaf.jpg", "sports-car-drawing.jpg"} <= {
        p.name for p in labelled
    }
    _, logits = embedder.backbone.run([Image.open(p).convert("RGB") for p in labelled])
    names = class_names()
    for (photo, expected), row in zip(labelled.items(), logits):
        top5 = [names[i] for i in np.argsort(-row)[:5]]
        assert set(expected) <= set(top5), (photo.name, expected, top5)


@pytest.mark.slow  # the real model
def test_text_and_image_share_a_space(embedder, photos):
    cat = [p for p in photos if p.name == "cat-chelsea.jpg"][0]
    coffee = [p for p in photos if p.name == "coffee-cup.jpg"][0]
    images = embedder.embed_images([Image.open(cat).convert("RGB"), Image.open(coffee).convert("RGB")])
    texts = embedder.embed_texts(["a photo of a cat", "a cup of coffee"])
    sims = texts @ images.T
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0]


@pytest.mark.slow  # the real model
def test_labelled_text_queries_rank_their_photo_first(embedder, photos):
    """Each text query in labels.json finds its photo first among all the test photos."""
    images = embedder.encode_images([Image.open(p).convert("RGB") for p in photos])[SEMANTIC]
    queries = [(p.name, q) for p in photos for q in LABELS[p.name]["text_queries"]]
    assert len(queries) >= 20
    firsts = (embedder.embed_texts([q for _, q in queries]) @ images.T).argmax(axis=1)
    wrong = [(q, want, photos[i].name) for (want, q), i in zip(queries, firsts) if photos[i].name != want]
    assert wrong == []


@pytest.mark.slow  # the real model
def test_onnx_text_encoder_matches_sentence_transformers(embedder):
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    from visualsearch.models.text import bundled_minilm_path

    texts = ["a dog on a beach", "Four people sitting at a dining table with cake and drinks."]
    reference = SentenceTransformer(str(bundled_minilm_path()), device="cpu").encode(texts, normalize_embeddings=True)
    assert np.allclose(embedder.embed_texts(texts), reference, atol=1e-4)


@pytest.mark.slow  # the real model
def test_model_id_names_the_configuration(embedder):
    assert embedder.model_id.startswith("conse-efficientnet-lite0-minilm")


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown model"):
        load_embedder("no-such-model")


def test_image_model_threads_come_from_the_settings(tmp_path, monkeypatch):
    """Every core by default; VISUALSEARCH_MODEL_THREADS sets fewer, for CLIP-type models too."""
    import os

    from visualsearch.config import Settings
    from visualsearch.services import Library

    assert load_embedder("conse-efficientnet-lite0-minilm").backbone.threads == (os.cpu_count() or 1)
    monkeypatch.setenv("VISUALSEARCH_MODEL_THREADS", "3")
    lib = Library(Settings.from_env(tmp_path / "lib"))
    assert lib.embedder.backbone.threads == 3
    assert load_embedder("hf-clip:/nowhere", threads=3).threads == 3
    assert load_embedder("hf-clip:/nowhere").threads == (os.cpu_count() or 1)


def test_the_model_loader_sent_to_ray_workers_carries_nothing_of_the_settings(tmp_path):
    """Ray pickles the loader to every worker; the settings hold the database URL and its password."""
    import functools

    from ray import cloudpickle

    from visualsearch.config import Settings
    from visualsearch.services import Library

    lib = Library(Settings.from_env(tmp_path / "lib", allowed_hosts=("s3cret.example",), model_threads=3))
    shipped = cloudpickle.dumps(functools.partial(lib._loader, "conse-efficientnet-lite0-minilm"))
    assert b"s3cret" not in shipped
    assert cloudpickle.loads(shipped)().backbone.threads == 3


# -- CLIP path: a tiny randomly initialised CLIP (tests/support/tiny_models.py), loaded from its folder --


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.mark.slow  # transformers + torch, ~3 s
def test_hf_clip_loads_from_a_local_folder(tiny_clip):
    embedder = load_embedder(f"hf-clip:{tiny_clip}")
    assert embedder.spaces == {SEMANTIC: 16}
    images = embedder.embed_images([gradient_image(1), gradient_image(2)])
    texts = embedder.embed_texts(["a red cat", "dog"])
    assert images.shape == (2, 16) and texts.shape == (2, 16)
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    assert embedder.similarity_space == SEMANTIC
    assert embedder.model_id == f"hf-clip:{tiny_clip}"


@pytest.mark.slow  # transformers + torch
def test_library_runs_on_a_clip_model(tiny_clip, tmp_path):
    from visualsearch.config import Settings
    from visualsearch.services import Library, SearchService

    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(5):
        gradient_image(i).save(folder / f"{i}.png")
    lib = Library(Settings.from_env(tmp_path / "lib", model=f"hf-clip:{tiny_clip}"))
    assert lib.index_folder(folder).indexed == 5
    engine = SearchService(lib)
    assert len(engine.text("a cat", limit=3)) == 3
    similar = engine.similar_to_asset(1, limit=10)
    assert len(similar) == 4 and 1 not in [r.asset_id for r in similar]


@pytest.mark.slow  # CLI subprocesses, ~20 s
def test_cli_moves_a_library_to_a_new_model_with_reembed(tiny_clip, tmp_path):
    """Through the entry point: a new --model leaves search on the old vectors until `reembed` switches."""
    import json
    import os
    import subprocess
    import sys

    def cli(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "visualsearch", *map(str, args)],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    folder, library, clip = tmp_path / "pics", tmp_path / "lib", f"hf-clip:{tiny_clip}"
    folder.mkdir()
    for i in range(5):
        gradient_image(i).save(folder / f"{i}.png")
    cli("index", folder, "--library", library)

    status = json.loads(cli("status", "--library", library, "--model", clip, "--json").stdout)
    assert status["model"] == "conse-efficientnet-lite0-minilm"
    assert status["reembedding"] == {"to": clip, "to_model_id": clip, "done": 0, "total": 5}

    def said(proc) -> str:  # rich wraps long lines
        return " ".join((proc.stdout + proc.stderr).split())

    # Still searchable, on the old model's vectors, while the new model is pending, and it says so.
    pending = cli("search", "a cat", "--library", library, "--model", clip, "--json", "-n", "3")
    assert len(json.loads(pending.stdout)) == 3
    assert f"the library is moving to {clip} (0 of 5 images re-embedded); run `visualsearch reembed`" in said(pending)

    assert f"searches now use {clip}" in said(cli("reembed", "--library", library, "--model", clip))
    status = json.loads(cli("status", "--library", library, "--model", clip, "--json").stdout)
    assert (status["model"], status["reembedding"]) == (clip, None)
    results = json.loads(cli("search", "a cat", "--library", library, "--model", clip, "--json", "-n", "10").stdout)
    assert len(results) == 5
    assert "nothing to do" in said(cli("reembed", "--library", library, "--model", clip))
