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
    ``too_many_redirects``, ``timeout``, ``content_type`` or ``too_large``.
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


class ConfigError(VisualSearchError):
    """Settings that cannot work together (unknown model, bad path...)."""

    code = "config_error"
