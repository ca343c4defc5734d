"""Fetch an image from a URL without becoming a tool for attacks (SSRF).

- only ``http`` and ``https``;
- every address a host name resolves to is checked at connect time, inside
  the connection itself, so a DNS answer cannot change between the check and
  the connection (DNS rebinding); private, loopback, link-local, multicast,
  reserved and unspecified addresses are refused unless explicitly allowed;
- redirects are followed by hand, at most ``max_redirects``, each target
  checked again;
- connect/read timeouts and an overall deadline;
- the byte cap is enforced while streaming, not after, and the body must
  start with the magic bytes of an image format we decode.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin

import httpcore
import httpx

from ..config import MAX_IMAGE_BYTES, megabytes
from ..errors import FetchError, FetchTooLarge

_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"\xff\xd8\xff", "JPEG"), (0, b"\x89PNG\r\n\x1a\n", "PNG"), (0, b"GIF87a", "GIF"), (0, b"GIF89a", "GIF"),
    (8, b"WEBP", "WEBP"), (0, b"BM", "BMP"), (0, b"II*\x00", "TIFF"), (0, b"MM\x00*", "TIFF"),
    (4, b"ftypheic", "HEIF"), (4, b"ftypheix", "HEIF"), (4, b"ftypmif1", "HEIF"), (4, b"ftypmsf1", "HEIF"),
    (4, b"ftypavif", "AVIF"), (4, b"ftypavis", "AVIF"),
]


def sniff_image_format(head: bytes) -> str | None:
    """The image format named by the first bytes, or None."""
    for offset, magic, name in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return name
    return None


def address_refusal(ip: str) -> str | None:
    """Why this address may not be fetched by default, or None when it may."""
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    for attr, label in (("is_loopback", "loopback"), ("is_link_local", "link-local"),
                        ("is_multicast", "multicast"), ("is_unspecified", "unspecified"),
                        ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(addr, attr):
            return f"{label} address {addr} refused (set VISUALSEARCH_ALLOW_PRIVATE_URLS=1 for local use)"
    return None


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself and connects only to an address that passes the check."""

    def __init__(self, allow_private: bool):
        self.allow_private = allow_private

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise FetchError(f"cannot resolve host {host!r}: {exc.strerror}", "unresolvable") from exc
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        if not self.allow_private:
            for ip in addresses:
                reason = address_refusal(ip)
                if reason:
                    raise FetchError(reason, "private_address")
        last: Exception | None = None
        for ip in addresses:
            try:
                return super().connect_tcp(ip, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise httpcore.ConnectError(str(last) if last else f"cannot connect to {host}")


@dataclass
class FetchedImage:
    url: str  # final URL after redirects
    data: bytes
    content_type: str | None
    format: str


class ImageFetcher:
    def __init__(self, *, max_bytes: int = MAX_IMAGE_BYTES, allow_private: bool = False,
                 timeout: float = 10.0, max_redirects: int = 5, user_agent: str = "visualsearch/0.1"):
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.user_agent = user_agent

    def _client(self) -> httpx.Client:
        transport = httpx.HTTPTransport(retries=0)
        # httpx does not expose httpcore's network backend; swap the pool for one that uses ours.
        transport._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), max_connections=4,
            network_backend=_GuardedBackend(self.allow_private))
        timeout = httpx.Timeout(self.timeout, connect=min(5.0, self.timeout))
        return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False,
                            headers={"User-Agent": self.user_agent, "Accept": "image/*"}, trust_env=False)

    @staticmethod
    def _check_url(url: str) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except Exception as exc:
            raise FetchError(f"not a valid URL: {url!r}", "invalid_url") from exc
        if parsed.scheme not in ("http", "https"):
            raise FetchError(f"scheme {parsed.scheme or '(none)'!r} refused: only http and https URLs are fetched", "scheme")
        if not parsed.host:
            raise FetchError(f"URL has no host: {url!r}", "invalid_url")
        return parsed

    def fetch(self, url: str) -> FetchedImage:
        deadline = time.monotonic() + self.timeout * 3
        current = self._check_url(url)
        with self._client() as client:
            for _ in range(self.max_redirects + 1):
                try:
                    with client.stream("GET", current) as response:
                        if response.is_redirect:
                            location = response.headers.get("location")
                            if not location:
                                raise FetchError("redirect without a Location header", "http_status")
                            current = self._check_url(urljoin(str(current), location))
                            continue
                        if response.status_code != 200:
                            raise FetchError(f"server answered HTTP {response.status_code}", "http_status")
                        return self._read_body(response, str(current), deadline)
                except httpx.TimeoutException as exc:
                    raise FetchError(f"timed out fetching {current}", "timeout") from exc
                except httpx.HTTPError as exc:
                    cause = exc.__cause__ or exc.__context__
                    if isinstance(cause, FetchError):
                        raise cause from None
                    raise FetchError(f"could not fetch {current}: {exc}") from exc
            raise FetchError(f"too many redirects (more than {self.max_redirects})", "too_many_redirects")

    def _read_body(self, response: httpx.Response, url: str, deadline: float) -> FetchedImage:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchTooLarge(f"image is {megabytes(int(declared))}; the limit is {megabytes(self.max_bytes)}")
        content_type = response.headers.get("content-type")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes(65536):
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchTooLarge(f"image is larger than the limit of {megabytes(self.max_bytes)}")
            if time.monotonic() > deadline:
                raise FetchError("timed out while downloading the image", "timeout")
            chunks.append(chunk)
        data = b"".join(chunks)
        fmt = sniff_image_format(data[:32])
        if fmt is None:
            kind = (content_type or "unknown").split(";")[0]
            raise FetchError(f"the URL did not return an image (content type {kind}, unrecognised bytes)", "content_type")
        return FetchedImage(url, data, content_type, fmt)
