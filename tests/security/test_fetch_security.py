"""Security review of the URL fetcher: SSRF address rules, one overall deadline, gzip bombs.

Network rule: nothing here may reach beyond loopback. Refusals are tested as pure function
calls or with a fake ``socket.getaddrinfo``; an autouse guard fails the test on any DNS query
for a real name and on any connect to a non-loopback address (before it happens).
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpcore
import pytest
from PIL import Image

from visualsearch.errors import FetchError, FetchTooLarge
from visualsearch.ingest import fetch as fetch_module
from visualsearch.ingest.fetch import ImageFetcher, address_refusal


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), (0, 128, 255)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()
MiB = 2**20


# --- network guard ---------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def network_guard(monkeypatch):
    """Fail on any connect outside loopback and on any DNS query (only IP literals and localhost)."""
    violations: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address) -> None:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            violations.append(f"connect to {address!r}")
            raise AssertionError(f"test tried to connect to {address!r}: only loopback is allowed")

    def connect(self, address):
        check(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        literal = host is None or host == "localhost"
        try:
            ipaddress.ip_address(str(host).split("%")[0])
            literal = True
        except ValueError:
            pass
        if not literal:
            violations.append(f"DNS query for {host!r}")
            raise AssertionError(f"test tried to resolve {host!r}: no DNS queries allowed")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield violations
    assert not violations, violations


def _fake_dns(monkeypatch, answers: dict[str, list[str]], delay: float = 0.0, stop: threading.Event | None = None):
    """Make ``socket.getaddrinfo`` answer ``answers`` for these names (after ``delay`` seconds)."""

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if delay:
            (stop or threading.Event()).wait(delay)
        out = []
        for ip in answers[host]:
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            sockaddr = (ip, port, 0, 0) if family == socket.AF_INET6 else (ip, port)
            out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return out

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- 1. SSRF: the address rules (pure function calls) -------------------------------------------------


def _teredo(server: str, client: str) -> str:
    """A Teredo address (2001::/32) for this server and client (the client is stored inverted)."""
    value = (0x20010000 << 96) | (int(ipaddress.IPv4Address(server)) << 64) | (0x8000 << 48) | (0x1234 << 32)
    value |= ~int(ipaddress.IPv4Address(client)) & 0xFFFFFFFF
    return str(ipaddress.IPv6Address(value))


REFUSED = [
    # the review's findings (accepted by the old rules)
    "100.64.0.1",
    "100.100.100.200",
    "100.127.255.254",  # shared address space / cloud metadata
    "2002:7f00:1::",
    "2002:a00:1::",
    "2002:c0a8:101::1",
    "2002:a9fe:a9fe::",  # 6to4 wrapping 127/10/192.168/169.254
    "2002:6464:64c8::",  # 6to4 wrapping 100.100.100.200
    "fec0::1",
    "fec0:1234::5",
    "feff::1",  # site-local fec0::/10
    # embedded IPv4 addresses
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:100.100.100.200",
    "::ffff:169.254.169.254",
    "::ffff:0:7f00:1",  # IPv4-translated 127.0.0.1
    "64:ff9b::7f00:1",
    "64:ff9b::a00:1",
    "64:ff9b::6464:64c8",
    "64:ff9b:1::a00:1",
    "64:ff9b:1:2::c0a8:101",
    _teredo("127.0.0.1", "8.8.8.8"),
    _teredo("8.8.8.8", "127.0.0.1"),
    _teredo("8.8.8.8", "10.0.0.1"),
    _teredo("8.8.8.8", "8.8.4.4"),  # Teredo is not globally routable in itself
    "::127.0.0.1",
    "::8.8.8.8",  # deprecated IPv4-compatible
    # the classics
    "127.0.0.1",
    "127.1.2.3",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.0.1",
    "169.254.169.254",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "240.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "192.0.0.170",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "ff0e::1",
    "2001:db8::1",
    "100::1",
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::",
    "2002:808:808:1::1",
]


@pytest.mark.parametrize("ip", REFUSED)
def test_address_is_refused(ip):
    reason = address_refusal(ip)
    assert reason and "refused" in reason and "VISUALSEARCH_ALLOW_PRIVATE_URLS" in reason


@pytest.mark.parametrize("ip", ALLOWED)
def test_public_address_is_allowed(ip):
    assert address_refusal(ip) is None


def test_refusal_names_the_embedded_address():
    assert "127.0.0.1" in address_refusal("2002:7f00:1::") and "6to4" in address_refusal("2002:7f00:1::")
    assert "10.0.0.1" in address_refusal("64:ff9b::a00:1")
    assert "loopback" in address_refusal("::ffff:127.0.0.1")


@pytest.mark.parametrize("ip", ["100.100.100.200", "2002:7f00:1::", "2002:a00:1::", "fec0::1", "64:ff9b::7f00:1"])
def test_fetch_refuses_a_name_resolving_to_a_forbidden_address(monkeypatch, ip):
    _fake_dns(monkeypatch, {"images.example.test": [ip]})
    with pytest.raises(FetchError) as info:
        ImageFetcher(timeout=2).fetch("http://images.example.test/x.png")
    assert info.value.reason == "private_address"


def test_one_forbidden_answer_among_public_ones_refuses_the_fetch(monkeypatch):
    _fake_dns(monkeypatch, {"images.example.test": ["8.8.8.8", "100.100.100.200"]})
    with pytest.raises(FetchError) as info:
        ImageFetcher(timeout=2).fetch("http://images.example.test/x.png")
    assert info.value.reason == "private_address"


# --- loopback servers -----------------------------------------------------------------------------


def _read_request(conn: socket.socket) -> str:
    """Read one request head; return its path."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    parts = data.split(b" ", 2)
    return parts[1].decode("latin-1") if len(parts) > 1 else ""


class RawServer:
    """A raw TCP server on 127.0.0.1 calling ``handle(conn, path, server)`` per connection.

    It stops by itself: daemon threads, a bounded lifetime, and ``close()`` (which wakes every
    handler waiting in :meth:`sleep`).
    """

    def __init__(self, handle, lifetime: float = 30.0):
        self.handle = handle
        self.stop = threading.Event()
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._until = time.monotonic() + lifetime
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._serve, daemon=True)
        self._accepting.start()

    def _serve(self) -> None:
        while not self.stop.is_set() and time.monotonic() < self._until:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            self.connections += 1
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                self.handle(conn, _read_request(conn), self)
            except OSError:
                pass

    def sleep(self, seconds: float) -> bool:
        """Wait; False when the server is stopping."""
        return not self.stop.wait(seconds) and time.monotonic() < self._until

    def drip(self, conn: socket.socket, data: bytes, interval: float = 0.3, limit: int = 30) -> None:
        """Send ``data`` one byte every ``interval`` seconds, at most ``limit`` bytes, then return."""
        for byte in data[:limit]:
            conn.sendall(bytes([byte]))
            if not self.sleep(interval):
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self._accepting.join(2)
        for thread in self._threads:
            thread.join(2)


@pytest.fixture
def raw_server():
    servers: list[RawServer] = []

    def start(handle, lifetime: float = 30.0) -> RawServer:
        server = RawServer(handle, lifetime)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(PNG)


def _answer(conn: socket.socket, status: str = "200 OK", headers: str = "", body: bytes = b"") -> None:
    conn.sendall(
        f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n{headers}\r\n".encode() + body
    )


# --- 2. one overall deadline ------------------------------------------------------------------------

TIMEOUT = 1.5


def _assert_times_out(url: str, **kwargs) -> float:
    fetcher = ImageFetcher(allow_private=True, timeout=TIMEOUT, **kwargs)
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetcher.fetch(url)
    elapsed = time.monotonic() - started
    assert info.value.reason == "timeout", info.value
    assert elapsed < TIMEOUT + 1, f"the fetch took {elapsed:.1f} s"
    return elapsed


@pytest.mark.slow  # waits out the fetch deadline
def test_headers_dripping_one_byte_at_a_time_time_out(raw_server):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\n"
    server = raw_server(lambda conn, path, srv: srv.drip(conn, head))
    _assert_times_out(f"{server.url}/img.png")


@pytest.mark.slow  # waits out the fetch deadline
def test_body_dripping_one_byte_at_a_time_times_out(raw_server):
    def handle(conn, path, srv):
        conn.sendall(HEAD)
        srv.drip(conn, PNG)

    server = raw_server(handle)
    _assert_times_out(f"{server.url}/img.png")


@pytest.mark.slow  # waits out the fetch deadline
def test_server_that_never_answers_times_out(raw_server):
    server = raw_server(lambda conn, path, srv: srv.sleep(20))
    _assert_times_out(f"{server.url}/img.png")


@pytest.mark.slow  # waits out the fetch deadline
def test_tls_handshake_that_never_answers_times_out(raw_server):
    server = raw_server(lambda conn, path, srv: srv.sleep(20))
    _assert_times_out(f"https://127.0.0.1:{server.port}/img.png")


@pytest.mark.slow  # waits out the fetch deadline
def test_deadline_covers_every_redirect(raw_server):
    # Each hop answers within the per-read timeout, but five of them take far longer than the deadline.
    def handle(conn, path, srv):
        if not srv.sleep(0.8):
            return
        last = path.rsplit("/", 1)[-1]
        hop = int(last) if last.isdigit() else 0
        if hop < 5:
            _answer(conn, "302 Found", f"Location: /{hop + 1}\r\n")
        else:
            conn.sendall(HEAD + PNG)

    server = raw_server(handle)
    _assert_times_out(f"{server.url}/0")


@pytest.mark.slow  # waits out the fetch deadline
def test_deadline_covers_name_resolution(raw_server, monkeypatch):
    server = raw_server(lambda conn, path, srv: conn.sendall(HEAD + PNG))
    wake = threading.Event()
    _fake_dns(monkeypatch, {"slow-dns.example.test": ["127.0.0.1"]}, delay=5, stop=wake)
    try:
        _assert_times_out(f"http://slow-dns.example.test:{server.port}/img.png")
    finally:
        wake.set()  # let the abandoned lookup thread end


@pytest.mark.slow  # waits out several fetch deadlines, ~3.5 s
def test_deadline_is_per_fetch_on_a_shared_fetcher(raw_server):
    def handle(conn, path, srv):
        if srv.sleep(0.9):
            conn.sendall(HEAD + PNG)

    server = raw_server(handle)
    fetcher = ImageFetcher(allow_private=True, timeout=TIMEOUT)
    assert fetcher.fetch(f"{server.url}/a.png").data == PNG
    assert fetcher.fetch(f"{server.url}/b.png").data == PNG  # a fresh deadline, not the first fetch's
    results: list[object] = []

    def run(n: int) -> None:
        time.sleep(0.3 * n)
        try:
            results.append(fetcher.fetch(f"{server.url}/{n}.png").data == PNG)
        except Exception as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [True, True, True]


class _FakeStream(httpcore.NetworkStream):
    def __init__(self):
        self.calls: list[tuple[str, float | None]] = []

    def read(self, max_bytes, timeout=None):
        self.calls.append(("read", timeout))
        return b"x"

    def write(self, buffer, timeout=None):
        self.calls.append(("write", timeout))

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        self.calls.append(("start_tls", timeout))
        return _FakeStream()

    def close(self):
        self.calls.append(("close", None))

    def get_extra_info(self, info):
        return f"info:{info}"


def test_deadline_stream_cuts_each_operation_to_the_time_left():
    inner = _FakeStream()
    stream = fetch_module._DeadlineStream(inner, time.monotonic() + 1.0)
    stream.read(10, timeout=10.0)
    stream.write(b"x", timeout=0.2)
    stream.read(10, timeout=None)
    (_, t1), (_, t2), (_, t3) = inner.calls
    assert 0 < t1 <= 1.0 and t2 == 0.2 and 0 < t3 <= 1.0
    tls = stream.start_tls(None, "example.test", timeout=10.0)
    assert isinstance(tls, fetch_module._DeadlineStream) and 0 < inner.calls[-1][1] <= 1.0
    assert stream.get_extra_info("socket") == "info:socket"
    stream.close()
    assert inner.calls[-1] == ("close", None)

    expired = fetch_module._DeadlineStream(_FakeStream(), time.monotonic() - 0.01)
    with pytest.raises(httpcore.ReadTimeout):
        expired.read(10, timeout=10.0)
    with pytest.raises(httpcore.WriteTimeout):
        expired.write(b"x", timeout=10.0)
    with pytest.raises(httpcore.ConnectTimeout):
        expired.start_tls(None, "example.test", timeout=10.0)


# --- 3. compressed bodies ----------------------------------------------------------------------------


def _gzip_of_zeros(size: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MiB)
    parts = [comp.compress(block) for _ in range(size // MiB)]
    parts.append(comp.flush())
    return b"".join(parts)


_BOMB: list[bytes] = []


def bomb() -> bytes:
    """About 400 KiB of gzip that inflates to 400 MiB of zeros (built once)."""
    if not _BOMB:
        _BOMB.append(_gzip_of_zeros(400 * MiB))
    return _BOMB[0]


class GzipHandler(BaseHTTPRequestHandler):
    seen_accept_encoding: list[str | None] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        GzipHandler.seen_accept_encoding.append(self.headers.get("Accept-Encoding"))
        path = self.path.split("?")[0]
        if path == "/bomb":
            self._send(bomb(), "gzip")
        elif path == "/bomb-no-length":
            self._send(bomb(), "gzip", length=False)
        elif path == "/png":
            self._send(PNG, None)
        elif path == "/png-gzip":
            self._send(gzip.compress(PNG), "gzip")
        elif path == "/png-x-gzip":
            self._send(gzip.compress(PNG), "x-gzip")
        elif path == "/png-deflate":
            self._send(zlib.compress(PNG), "deflate")
        elif path == "/png-raw-deflate":
            obj = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            self._send(obj.compress(PNG) + obj.flush(), "deflate")
        elif path == "/png-identity":
            self._send(PNG, "identity")
        elif path == "/corrupt-gzip":
            self._send(gzip.compress(PNG)[:10] + b"\xff" * 50, "gzip")
        elif path.startswith("/png-as-"):  # an unsupported encoding named in the path
            self._send(PNG, path[len("/png-as-") :].replace("_", ", "))
        elif path == "/incompressible-gzip":  # compressed bytes over the cap, decoded bytes under it
            self._send(gzip.compress(_NOISE), "gzip", length=False)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def _send(self, body: bytes, encoding: str | None, length: bool = True):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


_NOISE = PNG + os.urandom(MiB - len(PNG))


@pytest.fixture(scope="module")
def gz_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), GzipHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def local(**kwargs) -> ImageFetcher:
    return ImageFetcher(allow_private=True, **{"timeout": 20, **kwargs})


def test_identity_encoding_is_asked_for(gz_server):
    GzipHandler.seen_accept_encoding.clear()
    assert local().fetch(f"{gz_server}/png").data == PNG
    assert GzipHandler.seen_accept_encoding == ["identity"]


@pytest.mark.parametrize("path", ["/png-gzip", "/png-x-gzip", "/png-deflate", "/png-raw-deflate", "/png-identity"])
def test_compressed_image_is_decoded(gz_server, path):
    fetched = local().fetch(f"{gz_server}{path}")
    assert fetched.data == PNG and fetched.format == "PNG"


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip_gzip", "gzip_br", "x-custom"])
def test_other_content_encodings_are_refused(gz_server, encoding):
    with pytest.raises(FetchError) as info:
        local().fetch(f"{gz_server}/png-as-{encoding}")
    assert info.value.reason == "encoding" and "encoding" in str(info.value)


def test_corrupt_compressed_body_is_refused(gz_server):
    with pytest.raises(FetchError) as info:
        local().fetch(f"{gz_server}/corrupt-gzip")
    assert info.value.reason == "encoding"


@pytest.mark.parametrize("path", ["/bomb", "/bomb-no-length"])
def test_gzip_bomb_is_refused(gz_server, path):
    started = time.monotonic()
    with pytest.raises(FetchTooLarge):
        local(max_bytes=40 * MiB).fetch(f"{gz_server}{path}")
    assert time.monotonic() - started < 10


def test_compressed_bytes_are_capped_too(gz_server):
    # ~1 MiB of noise gzips to a little more than 1 MiB: decoded it fits, received it does not.
    with pytest.raises(FetchTooLarge):
        local(max_bytes=len(_NOISE) + 16).fetch(f"{gz_server}/incompressible-gzip")


def test_inflater_never_produces_more_than_the_cap():
    out: list[bytes] = []
    inflater = fetch_module._Inflater("gzip", MiB)
    with pytest.raises(FetchTooLarge):
        inflater.feed(bomb(), out)  # the whole bomb in one piece
    assert sum(map(len, out)) <= MiB


_MEMORY_PROBE = """
import json, sys
from visualsearch.errors import FetchTooLarge
from visualsearch.ingest.fetch import ImageFetcher
fetcher = ImageFetcher(allow_private=True, max_bytes=40 * 2**20, timeout=60)
fetcher.fetch(sys.argv[2])  # warm up: imports, SSL context, first connection


def status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


# Peak (VmHWM) after, minus the CURRENT size (VmRSS) before: the peak before could hide the growth.
# Not ru_maxrss: on Linux it carries the RSS the parent (this big test process) had when it forked.
before = status_kib("VmRSS")
try:
    fetcher.fetch(sys.argv[1])
    outcome = "fetched"
except FetchTooLarge:
    outcome = "too_large"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {exc}"
after = status_kib("VmHWM")
print(json.dumps({"outcome": outcome, "growth_kib": after - before, "before_kib": before}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to read peak memory")
def test_gzip_bomb_memory_stays_bounded(gz_server):
    bomb()  # build it before the child asks for it
    src = str(Path(fetch_module.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, f"{gz_server}/bomb", f"{gz_server}/png"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print("gzip bomb peak RSS growth:", result)
    assert result["outcome"] == "too_large"
    assert result["growth_kib"] * 1024 < 100 * 10**6, f"peak RSS grew by {result['growth_kib'] / 1024:.0f} MiB"
