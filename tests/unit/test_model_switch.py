"""Moving a library between models: a new request during a re-embedding must not strand searches."""

from __future__ import annotations

from tests.support.embedders import TinyEmbedder
from tests.support.images import solid
from visualsearch.config import Settings
from visualsearch.services import Library, reembed_library


class Named(TinyEmbedder):
    def __init__(self, name: str):
        super().__init__()
        self.model_id = f"tiny-{name}"


def test_a_new_request_during_a_reembedding_waits_for_its_own_vectors(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i, rgb in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (90, 90, 90)]):
        solid(rgb).save(folder / f"{i}.png")
    models = {name: Named(name) for name in ("a", "b", "c")}
    settings = Settings.from_env(tmp_path / "lib")
    settings.model = "a"
    library = Library(settings, loader=lambda name: models[name])
    library.model_pinned = False  # as without VISUALSEARCH_MODEL: `models use` may choose
    library.index_folder(folder)
    assert library.embedder.model_id == "tiny-a"

    library.request_model("b")
    asked = []

    def meanwhile(done: int, total: int) -> None:  # the user picks another model while b is re-embedded
        if done and not asked:
            asked.append(library.request_model("c"))

    report = reembed_library(library, progress=meanwhile)
    assert not report.switched and library.embedder.model_id == "tiny-a"  # still a: c has no vectors yet
    change = library.model_change()
    assert change is not None and change.to_model == "tiny-c"
    report = reembed_library(library)
    assert report.switched and library.embedder.model_id == "tiny-c"
    assert library.catalog.count_with_embeddings("tiny-c", "semantic") == 4
    assert library.model_change() is None


class Coloured(Named):
    """The tiny test model plus the colour-and-light attributes, as the bundled model has them."""

    def __init__(self):
        super().__init__("colour")
        self.spaces = {**self.spaces, "attributes": 18}

    def encode_images(self, images):
        import numpy as np

        from visualsearch.models.attributes import attributes

        out = super().encode_images(images)
        crops = np.stack([np.asarray(im.convert("RGB").resize((32, 32))) for im in images])
        return {**out, "attributes": attributes(crops, step=1)}


def test_colour_queries_page_through_one_ranking(tmp_path, monkeypatch):
    import visualsearch.services.search as search_module
    from visualsearch.services import SearchService

    folder = tmp_path / "pictures"
    folder.mkdir()
    colours = [(255, 0, 0), (200, 40, 40), (0, 255, 0), (0, 0, 255), (250, 140, 30), (90, 90, 90), (20, 20, 20)]
    for i, rgb in enumerate(colours):
        solid(rgb).save(folder / f"{i}.png")
    library = Library(Settings.from_env(tmp_path / "lib"), embedder=Coloured())
    library.index_folder(folder)
    monkeypatch.setattr(search_module, "CANDIDATES", 4)  # a window of 4 results, as 300 are in a big library
    engine = SearchService(library)
    whole = [r.asset_id for r in engine.text("red", limit=4)]
    pages = [r.asset_id for r in engine.text("red", limit=2)] + [
        r.asset_id for r in engine.text("red", limit=2, offset=2)
    ]
    assert pages == whole and len(set(whole)) == 4
    first = engine.text("red", limit=1)[0]
    assert first.score > 1.0  # text cosine + the weighted colour cosine: the red picture, by both
