"""Use cases of the product, between the surfaces (CLI, API, page) and the engine parts.

Surfaces call these; these call the catalog, indexes, models and ingestion. One
service per use case: adding images (:mod:`.adding`), search (:mod:`.search`),
duplicates and trash (:mod:`.duplicates`), background jobs (:mod:`.jobs`),
re-embedding (:mod:`.reembed`),
reading text in pictures (:mod:`.reading`), choosing a model (:mod:`.models`) and API keys (:mod:`.keys`), all on one
:class:`~.library.Library` (the composition root of one library).
"""

from .adding import Incoming, Outcome, add_incoming, fetch_to_staging
from .assets import AssetService
from .duplicates import DuplicatesService
from .jobs import JobQueue
from .keys import KeyService
from .library import Library, ModelChange
from .models import ModelInfo, ModelService
from .reading import ReadReport, read_library_text, text_status, unread_count
from .reembed import ReembedReport, reembed_library
from .search import SearchResult, SearchService

__all__ = [
    "AssetService",
    "DuplicatesService",
    "Incoming",
    "JobQueue",
    "KeyService",
    "Library",
    "ModelChange",
    "ModelInfo",
    "ModelService",
    "Outcome",
    "ReadReport",
    "ReembedReport",
    "SearchResult",
    "SearchService",
    "add_incoming",
    "fetch_to_staging",
    "read_library_text",
    "reembed_library",
    "text_status",
    "unread_count",
]
