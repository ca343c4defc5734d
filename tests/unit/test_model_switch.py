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
