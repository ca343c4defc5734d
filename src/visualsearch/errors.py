"""Exceptions with messages meant for people, not stack traces."""


class VisualSearchError(Exception):
    """Base class for errors the product reports to users."""

    code = "error"


class DecodeError(VisualSearchError):
    """An image could not be decoded (corrupt, truncated, empty, too large)."""

    code = "invalid_image"


class UnsupportedImage(DecodeError):
    """The bytes are not in any image format we can read."""

    code = "unsupported_image"


class ImageTooLarge(DecodeError):
    """The image exceeds the byte or pixel cap."""

    code = "too_large"


class NotFound(VisualSearchError):
    """An asset id or file does not exist."""

    code = "not_found"


class FetchError(VisualSearchError):
    """A URL could not be fetched, or was refused before fetching.

    ``reason`` is a stable word for programs: ``invalid_url``, ``scheme``,
    ``private_address``, ``unresolvable``, ``unreachable``, ``http_status``,
    ``too_many_redirects``, ``timeout``, ``content_type``, ``encoding`` (a compression we
    did not ask for, or a corrupt compressed body) or ``too_large``.
    """

    code = "url_refused"

    def __init__(self, message: str, reason: str = "unreachable"):
        super().__init__(message)
        self.reason = reason


class FetchTooLarge(FetchError, ImageTooLarge):
    """The image behind a URL is over the size limit."""

    def __init__(self, message: str):
        super().__init__(message, reason="too_large")


class Duplicate(VisualSearchError):
    """The same image (identical bytes) is already in the library."""

    code = "duplicate"

    def __init__(self, message: str, asset_id: int):
        super().__init__(message)
        self.asset_id = asset_id


class NearDuplicate(Duplicate):
    """A near-duplicate (resized, re-encoded, cropped... copy) is already in the library."""

    code = "near_duplicate"

    def __init__(self, message: str, asset_id: int, similarity: float):
        super().__init__(message, asset_id)
        self.similarity = similarity


class InvalidInput(VisualSearchError):
    """A value the user gave cannot be used (an empty name, a bad option)."""

    code = "invalid_request"


class ConfigError(VisualSearchError):
    """Settings that cannot work together (unknown model, bad path...)."""

    code = "config_error"


class SourceChanged(VisualSearchError):
    """The URL is in the library already, and the image behind it has changed since.

    The library keeps the image it has (one asset per URL) rather than replacing it
    silently: the user deletes the old asset first to take the new image.
    """

    code = "url_changed"

    def __init__(self, message: str, asset_id: int):
        super().__init__(message)
        self.asset_id = asset_id


class ModelPinned(VisualSearchError):
    """The settings name the model (``VISUALSEARCH_MODEL`` / ``--model``), so choosing another here cannot win."""

    code = "model_pinned"


class ModelNotInstalled(ConfigError):
    """A curated model was asked for before ``visualsearch models use`` downloaded it."""

    code = "model_not_installed"


class ModelUnavailable(VisualSearchError):
    """A model cannot be used on this installation (an optional extra it needs is not installed)."""

    code = "model_unavailable"


class Busy(VisualSearchError):
    """The server is already doing as much of this kind of work as it safely can (decodes, fetches).

    Answered with 503 and ``Retry-After`` instead of queueing without bound: a flood of
    slow or huge requests must not take the memory or the threads the rest of the server needs.
    """

    code = "busy"

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class CheckingCopies(Busy):
    """The duplicates are being worked out (the copy check after indexing, or another request's first
    run): answered with 503, ``Retry-After`` and how far the check is, rather than a request that waits
    for minutes (and that a proxy in front of the server would cut)."""

    code = "checking_copies"

    def __init__(self, done: int, total: int, retry_after: float = 2.0):
        what = f"{done:,} of {total:,} candidate pairs" if total else "listing the candidate pairs"
        super().__init__(f"the library is being checked for copies ({what}); try again shortly", retry_after)
        self.done, self.total = done, total


class StorageFull(VisualSearchError):
    """The disk (or the database) is full: nothing was written, nothing already stored was lost."""

    code = "insufficient_storage"

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path
