"""Exceptions with messages meant for people, not stack traces."""


class VisualSearchError(Exception):
    """Base class for errors the product reports to users."""

    code = "error"


class DecodeError(VisualSearchError):
    """An image could not be decoded (corrupt, truncated, unsupported, too large)."""

    code = "decode_error"


class ImageTooLarge(DecodeError):
    """The image exceeds the byte or pixel cap."""

    code = "too_large"


class FetchError(VisualSearchError):
    """A URL could not be fetched, or was refused before fetching."""

    code = "fetch_refused"


class NotFound(VisualSearchError):
    """An asset id or file does not exist."""

    code = "not_found"


class ConfigError(VisualSearchError):
    """Settings that cannot work together (unknown model, bad path...)."""

    code = "config_error"
