"""Request and response bodies of the REST API (they are the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from ..config import MAX_SCORE
from ..search.query import MAX_QUERY_CHARS

MAX_URL_LENGTH = 2048
#: Largest id the catalog can hold (SQLite INTEGER is 64-bit).
MAX_ID = 2**62

AssetId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="An asset id.", examples=[42])]
KeyId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="An API key id.")]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable error code.", examples=["unsupported_image"])
    message: str = Field(description="What went wrong, for people.", examples=["not a recognised image format"])
    details: dict[str, Any] | None = Field(
        None, description="Extra facts: the URL refusal `reason`, a duplicate's `asset_id`..."
    )


class ErrorOut(BaseModel):
    error: ErrorDetail


class FromRecord(BaseModel):
    """A response model read from a record's attributes (``Model.model_validate(record)``)."""

    model_config = ConfigDict(from_attributes=True)


class AssetOut(FromRecord):
    id: int
    name: str | None = Field(description="File name shown to people.")
    source: str = Field(description="Where the image came from: a path on the server, an uploaded copy, or a URL.")
    origin: str | None = Field(description="`folder`, `upload` or `url`.")
    status: str = Field(description="`indexed`, or `failed` with `error`.")
    error: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    byte_size: int | None = None
    sha256: str | None = None
    added_at: datetime
    tags: list[str] = []

    @computed_field(description="256 px JPEG preview (cacheable).")  # type: ignore[prop-decorator]
    @property
    def thumbnail_url(self) -> str | None:
        if self.status != "indexed" or not self.sha256:
            return None
        return f"/api/assets/{self.id}/thumbnail?v={self.sha256[:12]}"

    @computed_field(description="The image itself.")  # type: ignore[prop-decorator]
    @property
    def original_url(self) -> str | None:
        return f"/api/assets/{self.id}/original" if self.status == "indexed" else None

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "name": "beach.jpg",
                    "source": "/photos/2024/beach.jpg",
                    "origin": "folder",
                    "status": "indexed",
                    "error": None,
                    "format": "JPEG",
                    "width": 4032,
                    "height": 3024,
                    "byte_size": 2837465,
                    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "added_at": "2026-11-24T10:00:00Z",
                    "tags": ["holiday"],
                    "thumbnail_url": "/api/assets/42/thumbnail?v=9f86d081884c",
                    "original_url": "/api/assets/42/original",
                }
            ]
        },
    )


class AssetPage(BaseModel):
    items: list[AssetOut]
    total: int = Field(description="Assets matching the filters.")
    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class TagsIn(BaseModel):
    tags: list[str] = Field(
        max_length=100,
        examples=[["holiday", "beach"]],
        description="Replaces the asset's tags. Trimmed, lower-cased, at most 64 characters each.",
    )


class TagsOut(BaseModel):
    asset_id: int
    tags: list[str]


class UrlIn(BaseModel):
    url: str = Field(max_length=MAX_URL_LENGTH, examples=["https://example.org/photos/cat.jpg"])
    tags: list[str] = Field(default=[], max_length=100)


class FolderIn(BaseModel):
    path: str = Field(max_length=4096, description="A folder on the server.", examples=["/srv/photos"])
    prune: bool = Field(False, description="Forget catalogued files under this folder that no longer exist.")


class UploadItem(BaseModel):
    name: str
    status: Literal["created", "error"]
    asset: AssetOut | None = None
    error: ErrorDetail | None = None
    near_duplicates: list[dict[str, Any]] = Field(
        default=[],
        description="With the `warn` policy: images already in the library that this one copies "
        "(`asset_id`, `similarity`, `kind`).",
    )


class UploadOut(BaseModel):
    items: list[UploadItem]
    created: int
    failed: int


class JobOut(FromRecord):
    id: str
    kind: str = Field(
        description="`folder`, `upload`, `reembed` (moving the library to a new model), `model` "
        "(downloading one: `total` and `done` count bytes), `read_text` (reading the words in pictures "
        "added by upload or URL while text reading is on) or `copies` (after indexing: checking the library's "
        "candidate copies that were never checked, pixel by pixel, so that `/api/duplicates` answers at once; "
        "`total` and `done` count candidate pairs, checked before or not)."
    )
    status: str = Field(description="`queued`, `running`, `done` or `failed`.")
    total: int
    done: int
    failed: int
    failures: list[dict[str, Any]] = Field(
        description="Files that could not be indexed, with the reason (first 1,000)."
    )
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status_url(self) -> str:
        return f"/api/jobs/{self.id}"


class SearchFilters(BaseModel):
    prefix: str | None = Field(None, max_length=4096, description="Source starts with this (a folder).")
    format: str | None = Field(None, max_length=16, examples=["JPEG"])
    tag: str | None = Field(None, max_length=64)
    q: str | None = Field(None, max_length=200, description="Substring of the file name, source or a tag.")
    added_after: datetime | None = None
    added_before: datetime | None = None


class SearchOptions(BaseModel):
    limit: int = Field(20, ge=1, le=200, description="Results per page.")
    offset: int = Field(0, ge=0, le=10_000, description="Results to skip (paging).")
    min_score: float | None = Field(
        None,
        ge=-MAX_SCORE,
        le=MAX_SCORE,
        description="Leave out results scoring below this (see `score`: text queries' scores reach about 2.3).",
    )
    filters: SearchFilters | None = None


class SearchIn(SearchOptions):
    """One of `text`, `asset_id` or `image_url`, or `text` with `asset_id` ("like asset 42, but at night").

    `text` understands `-word` / `-"a phrase"` (leave out), `+ phrase` (also look for) and `^2` (weight)
    after a part: `beach -people`, `red car + night^0.5`. To search with an image file, use
    `/api/search/image`.
    """

    text: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        examples=["gold bracelet on a wrist", "beach -people", "red car + night^0.5"],
    )
    asset_id: int | None = Field(
        None, ge=1, le=2**62, description="Images like this asset; with `text`, changed by the words."
    )
    explain: bool = Field(
        False, description="Text queries: give each result `why` (closeness to each part, what the model sees)."
    )
    image_url: str | None = Field(None, max_length=MAX_URL_LENGTH)

    @model_validator(mode="after")
    def _one_query(self) -> Self:
        given = [n for n in ("text", "asset_id", "image_url") if getattr(self, n) is not None]
        if len(given) != 1 and given != ["text", "asset_id"]:
            raise ValueError("give one of text, asset_id or image_url (or text with asset_id)")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"text": "cold night", "limit": 20},
                {"text": "beach -people", "limit": 20},
                {"text": "at night", "asset_id": 42},
                {"asset_id": 42, "limit": 10, "min_score": 0.5},
                {"image_url": "https://example.org/shoe.jpg", "filters": {"tag": "catalogue"}},
            ]
        }
    )


class PartScoreOut(FromRecord):
    text: str = Field(description="A part of the text query.")
    negative: bool = Field(description="A part the query leaves out (`-part`).")
    score: float = Field(description="Cosine similarity of the image to this part alone.")


class WhyOut(FromRecord):
    """Why a text result matched (`explain: true`)."""

    parts: list[PartScoreOut] = Field(description="How close the image is to each part of the query.")
    concepts: list[str] | None = Field(
        description="What the model sees in the image, best first (the bundled model: ImageNet classes); "
        "null when the model cannot say."
    )
    text: str | None = Field(
        None,
        description="The text read in the picture (OCR, `VISUALSEARCH_OCR=true`), one line per text line; "
        "null when none was read.",
    )


class SearchHit(FromRecord):
    rank: int = Field(description="1 for the most similar.")
    score: float = Field(
        description="Higher is more similar: the cosine similarity, plus for text queries the weighted "
        "colour-and-light cosine (queries with such words) and up to 0.5 for a picture that shows the query's "
        "words (OCR)."
    )
    asset_id: int
    asset: AssetOut
    words: list[str] = Field(
        default_factory=list,
        description="Text queries: the query's words that were read in this picture (OCR), e.g. a sign's "
        "`bakery`; empty when none were.",
    )
    why: WhyOut | None = Field(None, description="With `explain: true` on a text query: why it matched.")


class QueryOut(BaseModel):
    kind: Literal["text", "asset", "url", "image"]
    text: str | None = None
    understood: str | None = Field(
        None, description='How a text query was read, e.g. "beach (x2) + sunset, without people".'
    )
    asset_id: int | None = None
    image_url: str | None = None
    file_name: str | None = None


class SearchOut(BaseModel):
    query: QueryOut
    items: list[SearchHit] = Field(description="Most similar first.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null when there is none.")
    model_id: str
    took_ms: float
    close_matches: bool | None = Field(
        None,
        description="Text queries: whether anything in the library matches closely (the model's calibrated "
        "cut-off). False: the items are only the nearest, e.g. for a nonsense query. Null: not judged (a model "
        "without a cut-off, or a query that starts from an image).",
    )
    note: str | None = Field(
        None, description='What to tell the user, e.g. "No close matches; showing the nearest 20".'
    )


class IndexStats(BaseModel):
    space: str
    type: str = Field(description="`exact` or `hnsw`.")
    vectors: int


class ModelChangeOut(FromRecord):
    """A new model is configured: images are being re-embedded; searches use ``from_model`` until done."""

    from_model: str
    to_model: str
    done: int
    total: int


class StatsOut(BaseModel):
    assets: int
    indexed: int
    failed: int
    #: The model searches use now.
    model_id: str
    indexes: list[IndexStats]
    jobs_active: int
    model_change: ModelChangeOut | None = None


class HealthOut(BaseModel):
    status: str
    detail: str | None = None


class KeyIn(BaseModel):
    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"\S",
        examples=["photo-frame"],
        description="Who or what uses the key (not only spaces).",
    )
    role: Literal["read", "admin"] = "read"


class KeyOut(FromRecord):
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class KeyCreated(KeyOut):
    key: str = Field(description="The secret. Shown once; store it now.")


class MemberOut(FromRecord):
    asset: AssetOut
    similarity: float = Field(description="Cosine similarity to the group's keeper.")
    kind: str | None = Field(
        description="`exact_bytes`, `same_pixels`, `near_duplicate` or `lookalike`; null for the keeper."
    )


class GroupOut(FromRecord):
    keeper: MemberOut = Field(
        description="The image to keep: largest resolution, then least compressed, then oldest (see `keeper_reason`)."
    )
    keeper_reason: str | None = Field(
        None,
        description="Why the keeper was chosen, for people (e.g. `largest (4000×3000)`); null when not known.",
        examples=["largest (4000×3000)"],
    )
    others: list[MemberOut]
    size: int

    @field_validator("keeper_reason", mode="before")
    @classmethod
    def _no_empty_reason(cls, value: Any) -> Any:
        return value or None  # the finder's "" (no reason) is null here


class GroupPage(BaseModel):
    items: list[GroupOut]
    total: int
    limit: int
    offset: int
    threshold: float
    extras: int = Field(description="Images that are not keepers, over all groups.")


class TrashIn(BaseModel):
    asset_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=10_000)


class TrashedOut(FromRecord):
    asset_id: int
    name: str
    original: str
    trashed: str


class TrashOut(BaseModel):
    batch: str = Field(
        description="Undo with `POST /api/trash/{batch}/restore` or `visualsearch trash restore <batch>`."
    )
    moved: list[TrashedOut]


#: A trash batch name, as `POST /api/duplicates/trash` returned it.
TrashBatchName = Annotated[
    str,
    PathParam(
        min_length=1,
        max_length=64,
        pattern=r"^[0-9A-Za-z-]+$",
        description="A trash batch, as listed by `GET /api/trash`.",
        examples=["20260301-101500-a1b2c3"],
    ),
]


class TrashFileOut(BaseModel):
    asset_id: int = Field(description="The image's id when it was moved (restored, it gets a new one).")
    name: str
    original: str = Field(description="Where the file was (a path on the server).")
    in_trash: bool = Field(description="Still in the trash; false once restored.")
    thumbnail_url: str = Field(description="Its 256 px preview (`GET /api/trash/{batch}/files/{asset_id}/thumbnail`).")


class TrashBatchOut(BaseModel):
    batch: str
    at: datetime = Field(description="When the files were moved.")
    count: int = Field(description="Files in the batch.")
    restorable: bool = Field(description="Some of its files are still in the trash and can be restored.")
    files: list[TrashFileOut]


class TrashListOut(BaseModel):
    items: list[TrashBatchOut] = Field(description="Batches, newest first.")
    total: int = Field(description="Batches in the trash log.")
    in_trash: int = Field(description="Files still in the trash, over all batches.")
    limit: int
    offset: int


class RestoredOut(BaseModel):
    asset_id: int = Field(description="The image's id when it was moved to the trash.")
    name: str
    original: str
    asset: AssetOut | None = Field(description="The image in the library again (a new id); null if it failed.")


class RestoreOut(BaseModel):
    batch: str
    restored: list[RestoredOut]


class MatchOut(FromRecord):
    asset: AssetOut
    similarity: float
    kind: str


class CheckOut(BaseModel):
    duplicate: bool = Field(description="True when the image (or a copy of it) is already in the library.")
    matches: list[MatchOut]


#: OpenAPI responses every authenticated route can give (``responses=AUTH_ERRORS | {...}``).
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    429: {"model": ErrorOut},
}


class ModelOut(FromRecord):
    """One curated model, as `visualsearch models list` shows it."""

    name: str
    family: str
    dim: int = Field(description="Embedding size.")
    download_mb: int = Field(description="Approximate download, MB; 0 for the bundled model.")
    languages: str
    coco_r1: float | None = Field(description="Published text->image Recall@1 (%) on COCO 5k, zero-shot.")
    flickr_r1: float | None = Field(description="Published text->image Recall@1 (%) on Flickr30k 1k.")
    source: str = Field(description="Where the published figures come from.")
    pick: str = Field(description="When to choose it.")
    licence: str
    repo: str | None = Field(description="Hugging Face Hub repo its files come from; null when bundled.")
    installed: bool
    partial_bytes: int = Field(description="Bytes of an interrupted download that the next `use` resumes from.")
    disk_bytes: int
    images_per_s: float | None = Field(description="Indexing speed measured by benchmarks/models.py (2 CPU cores).")
    text_ms: float | None = Field(description="Time to embed one query text, measured the same way.")
    active: bool = Field(description="Searches use its vectors now.")
    requested: bool = Field(description="The library's chosen model (re-embedding moves it here if not active).")


class ModelsOut(BaseModel):
    models: list[ModelOut]
    active: str = Field(description="The model searches use now.")
    requested: str = Field(description="The model the library is set to; differs from `active` while re-embedding.")
    pinned: bool = Field(description="VISUALSEARCH_MODEL names the model, so it cannot be changed here.")
    model_change: ModelChangeOut | None = None
    job: JobOut | None = Field(None, description="The download or re-embedding in progress, if any.")
    downloading: str | None = Field(None, description="The model being downloaded, while a `model` job runs.")
    model_error: str | None = Field(
        None, description="Why the requested model cannot be used right now (e.g. it is not downloaded)."
    )


class ModelUseIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="A name from `GET /api/models`.")
