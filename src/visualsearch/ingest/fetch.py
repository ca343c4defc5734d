"""Fetch an image from a URL without becoming a tool for attacks (SSRF, slow drips, bombs).

- only ``http`` and ``https``;
- every address a host name resolves to is checked at connect time, inside
  the connection itself, so a DNS answer cannot change between the check and
  the connection (DNS rebinding). Unless explicitly allowed
  (``VISUALSEARCH_ALLOW_PRIVATE_URLS``), an address is refused when it is not
  globally routable (``ipaddress``'s ``is_global`` is false: private, loopback,
  link-local, reserved, unspecified, documentation, benchmarking...), when it
  is multicast, when it is in shared address space ``100.64.0.0/10`` (carrier
  grade NAT; cloud metadata such as 100.100.100.200 lives there) or IPv6
  site-local ``fec0::/10`` (both checked explicitly, see :func:`address_refusal`),
  or when it is a deprecated IPv4-compatible address (``::a.b.c.d``).
  IPv6 addresses that carry an IPv4 address are unwrapped and the IPv4
  address is checked too: IPv4-mapped ``::ffff:a.b.c.d``, IPv4-translated
  ``::ffff:0:a.b.c.d``, 6to4 ``2002::/16``, Teredo ``2001::/32`` (server and
  client) and NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``; IPv4-mapped and
  NAT64 addresses, mere spellings of the IPv4 address they carry, are judged
  by that IPv4 address alone;
- redirects are followed by hand, at most ``max_redirects``, each target
  checked again;
- ONE overall deadline per :meth:`ImageFetcher.fetch` call, equal to the
  fetcher's ``timeout``, covers name resolution, connecting, TLS, sending the
  request, the response headers and the body, across every redirect: each
  socket read or write is given at most the time left, so a server that drips
  one byte at a time cannot hold a fetch past the deadline;
- we ask for ``Accept-Encoding: identity``. A server that still compresses
  with ``gzip`` or ``deflate`` is decoded incrementally, never producing more
  than the byte cap (+1 byte) of output, so a small compressed "bomb" cannot
  take the memory; any other content encoding is refused;
- the byte cap is enforced while streaming, not after, on the bytes received
  and on the decoded bytes, and the body must start with the magic bytes of
  an image format we decode.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpcore
import httpx

if TYPE_CHECKING:
    import ssl

from ..config import MAX_IMAGE_BYTES, megabytes
from ..errors import FetchError, FetchTooLarge

_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (8, b"WEBP", "WEBP"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (4, b"ftypheic", "HEIF"),
    (4, b"ftypheix", "HEIF"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypmsf1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
    (4, b"ftypavis", "AVIF"),
]


def sniff_image_format(head: bytes) -> str | None:
    """The image format named by the first bytes, or None."""
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


# --- which addresses may be fetched --------------------------------------------------------------

# Checked explicitly: depending on the Python release (and its copy of the IANA special-purpose
# registries), ``is_global`` may or may not cover them. On 3.11, ``is_global`` is false for
# 100.64.0.0/10 (but ``is_private`` is false too) and TRUE for the deprecated site-local fec0::/10.
_SHARED_V4 = ipaddress.ip_network("100.64.0.0/10")
_SITE_LOCAL_V6 = ipaddress.ip_network("fec0::/10")
# NAT64: the well-known prefix and the local-use prefix, IPv4 address in the low 32 bits.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# IPv4-translated (SIIT, RFC 2765) and deprecated IPv4-compatible addresses, IPv4 in the low 32 bits.
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")


def _low32(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, each with the name of the wrapping."""
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if addr.ipv4_mapped is not None:
        found.append(("IPv4-mapped", addr.ipv4_mapped))
    if addr in _V4_TRANSLATED:
        found.append(("IPv4-translated", _low32(addr)))
    if addr.sixtofour is not None:
        found.append(("6to4", addr.sixtofour))
    if addr.teredo is not None:
        server, client = addr.teredo
        found += [("Teredo server", server), ("Teredo client", client)]
    if any(addr in net for net in _NAT64):
        found.append(("NAT64", _low32(addr)))
    return found


def _refusal_label(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What is wrong with one address (no unwrapping), or None when it is globally routable."""
    checks = (
        (addr.is_loopback, "loopback"),
        (addr.is_link_local, "link-local"),
        (addr.is_multicast, "multicast"),
        (addr.is_unspecified, "unspecified"),
        (isinstance(addr, ipaddress.IPv4Address) and addr in _SHARED_V4, "shared (carrier-grade NAT, 100.64.0.0/10)"),
        (isinstance(addr, ipaddress.IPv6Address) and addr in _SITE_LOCAL_V6, "site-local"),
        (isinstance(addr, ipaddress.IPv6Address) and addr in _V4_COMPATIBLE, "IPv4-compatible (deprecated)"),
        (addr.is_private, "private"),
        (addr.is_reserved, "reserved"),
        (not addr.is_global, "non-global"),
    )
    for refused, label in checks:
        if refused:
            return label
    return None


def address_refusal(ip: str) -> str | None:
    """Why this address may not be fetched by default, or None when it may.

    Pure function (no network). Refused: every address that is not globally routable
    (``is_global`` false), multicast, 100.64.0.0/10, fec0::/10, ``::a.b.c.d``, and every IPv6
    address whose embedded IPv4 address (IPv4-mapped/translated, 6to4, Teredo, NAT64) is refused.
    """
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return f"address {ip!r} is not an IP address, refused"
    hint = "(set VISUALSEARCH_ALLOW_PRIVATE_URLS=1 for local use)"
    if isinstance(addr, ipaddress.IPv6Address):
        for wrapping, inner in _embedded_ipv4(addr):
            label = _refusal_label(inner)
            if label:
                return f"{label} address {inner} (inside {wrapping} address {addr}) refused {hint}"
        if addr.ipv4_mapped is not None or any(addr in net for net in _NAT64):
            # Only a spelling of the IPv4 address just checked (the packets go there); the IPv6
            # forms themselves sit in ::/8, which ``is_reserved`` would refuse.
            return None
    label = _refusal_label(addr)
    if label:
        return f"{label} address {addr} refused {hint}"
    return None


# --- one deadline for the whole fetch --------------------------------------------------------------


def _time_left(deadline: float | None, timeout: float | None, exc_class: type[Exception]) -> float | None:
    """The timeout to give one network operation: ``timeout`` cut to what is left before the deadline."""
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise exc_class("the overall deadline of the fetch has passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write ends by the fetch's deadline.

    httpcore gives each read its own timeout, so a server sending one byte at a time could hold
    a connection for ever; here each operation gets ``min(timeout, time left)``.
    """

    def __init__(self, inner: httpcore.NetworkStream, deadline: float):
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(self._deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _time_left(self._deadline, timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


#: One ``socket.getaddrinfo`` entry: (family, type, proto, canonname, sockaddr); sockaddr[0] is the address.
_AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]


def _resolve(host: str, port: int, timeout: float | None) -> Sequence[_AddrInfo]:
    """``getaddrinfo`` within ``timeout`` (the system resolver has no timeout of its own to give).

    A lookup that outlives the deadline is left to finish in its daemon thread, which the
    system resolver's own retry limits end.
    """
    try:
        ipaddress.ip_address(host.split("%")[0])
        literal = True
    except ValueError:
        literal = False
    if literal or timeout is None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    outcome: dict[str, object] = {}
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=lookup, name="visualsearch-resolve", daemon=True).start()
    if not done.wait(timeout):
        raise httpcore.ConnectTimeout(f"resolving {host!r} took too long")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["infos"]  # type: ignore[return-value]


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself and connects only to an address that passes the check.

    One backend per fetch: it holds that fetch's deadline (``None``: no overall deadline).
    """

    def __init__(self, allow_private: bool, deadline: float | None = None):
        self.allow_private = allow_private
        self.deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = _resolve(host, port, _time_left(self.deadline, timeout, httpcore.ConnectTimeout))
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
                stream = super().connect_tcp(
                    ip, port, _time_left(self.deadline, timeout, httpcore.ConnectTimeout), local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
                continue
            return stream if self.deadline is None else _DeadlineStream(stream, self.deadline)
        raise httpcore.ConnectError(str(last) if last else f"cannot connect to {host}")


# --- content encodings -------------------------------------------------------------------------------


class _Inflater:
    """Incremental gzip/deflate decoding that never produces more than ``max_bytes`` + 1 bytes."""

    _STEP = 1 << 20  # at most this much output per zlib call

    def __init__(self, encoding: str, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self._head = b""
        # deflate is meant to be zlib-wrapped, but some servers send raw deflate: decided on the first 2 bytes.
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding != "deflate" else None

    def feed(self, data: bytes, out: list[bytes]) -> None:
        if self._obj is None:
            self._head += data
            if len(self._head) < 2:
                return
            b0, b1 = self._head[0], self._head[1]
            zlib_wrapped = (b0 & 0x0F) == 8 and ((b0 << 8) | b1) % 31 == 0
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
            data, self._head = self._head, b""
        while data and not self._obj.eof:  # data after the end of the stream is ignored
            try:
                piece = self._obj.decompress(data, min(self.max_bytes - self.size + 1, self._STEP))
            except zlib.error as exc:
                raise FetchError(f"the server sent a corrupt compressed body: {exc}", "encoding") from exc
            self._count(piece, out)
            data = self._obj.unconsumed_tail  # non-empty only when the output limit was reached

    def finish(self, out: list[bytes]) -> None:
        if self._obj is not None and not self._obj.eof:
            # All input is consumed by now, so what zlib still holds is at most a few hundred bytes.
            try:
                self._count(self._obj.flush(), out)
            except zlib.error as exc:
                raise FetchError(f"the server sent a corrupt compressed body: {exc}", "encoding") from exc

    def _count(self, piece: bytes, out: list[bytes]) -> None:
        self.size += len(piece)
        if self.size > self.max_bytes:
            raise FetchTooLarge(f"image is larger than the limit of {megabytes(self.max_bytes)} once decompressed")
        out.append(piece)


def _decoder_for(header: str | None, max_bytes: int) -> _Inflater | None:
    """The decoder a Content-Encoding header calls for (None: the body is used as is)."""
    codings = [c.strip().lower() for c in (header or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return _Inflater(codings[0], max_bytes)
    raise FetchError(
        f"the server sent the image with content encoding {header!r}, which is refused "
        "(only uncompressed, gzip or deflate bodies are accepted)",
        "encoding",
    )


@dataclass
class FetchedImage:
    url: str  # final URL after redirects
    data: bytes
    content_type: str | None
    format: str


class ImageFetcher:
    """Fetches one image per :meth:`fetch` call; safe to share between threads (no per-fetch state)."""

    def __init__(
        self,
        *,
        max_bytes: int = MAX_IMAGE_BYTES,
        allow_private: bool = False,
        timeout: float = 10.0,
        max_redirects: int = 5,
        user_agent: str = "visualsearch/0.1",
    ):
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.timeout = timeout  # the overall deadline of a fetch, redirects included
        self.max_redirects = max_redirects
        self.user_agent = user_agent

    def _client(self, deadline: float | None = None) -> httpx.Client:
        transport = httpx.HTTPTransport(retries=0)
        # httpx does not expose httpcore's network backend; swap the pool for one that uses ours.
        transport._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=4,
            network_backend=_GuardedBackend(self.allow_private, deadline),
        )
        timeout = httpx.Timeout(self.timeout, connect=min(5.0, self.timeout))
        headers = {"User-Agent": self.user_agent, "Accept": "image/*", "Accept-Encoding": "identity"}
        return httpx.Client(
            transport=transport, timeout=timeout, follow_redirects=False, headers=headers, trust_env=False
        )

    @staticmethod
    def _check_url(url: str) -> httpx.URL:
        try:
            parsed = httpx.URL(url)
        except Exception as exc:
            raise FetchError(f"not a valid URL: {url!r}", "invalid_url") from exc
        if parsed.scheme not in ("http", "https"):
            raise FetchError(
                f"scheme {parsed.scheme or '(none)'!r} refused: only http and https URLs are fetched", "scheme"
            )
        if not parsed.host:
            raise FetchError(f"URL has no host: {url!r}", "invalid_url")
        return parsed

    def fetch(self, url: str) -> FetchedImage:
        deadline = time.monotonic() + self.timeout  # local to this call: the fetcher may be shared
        current = self._check_url(url)
        with self._client(deadline) as client:
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
        decoder = _decoder_for(response.headers.get("content-encoding"), self.max_bytes)
        # A list of pieces joined once at the end: a growing buffer would be copied as it grows.
        chunks: list[bytes] = []
        received = 0
        # iter_raw: the bytes as they arrive, never decoded by httpx (which would inflate a whole chunk at once).
        for chunk in response.iter_raw():
            received += len(chunk)
            if received > self.max_bytes:
                raise FetchTooLarge(f"image is larger than the limit of {megabytes(self.max_bytes)}")
            if time.monotonic() > deadline:
                raise FetchError("timed out while downloading the image", "timeout")
            if decoder is None:
                chunks.append(chunk)
            else:
                decoder.feed(chunk, chunks)
        if decoder is not None:
            decoder.finish(chunks)
        data = b"".join(chunks)
        del chunks
        fmt = sniff_image_format(data[:32])
        if fmt is None:
            kind = (content_type or "unknown").split(";")[0]
            raise FetchError(
                f"the URL did not return an image (content type {kind}, unrecognised bytes)", "content_type"
            )
        return FetchedImage(url, data, content_type, fmt)
