"""URL fetching: refusals (SSRF, schemes, sizes, content) and a real fetch on 127.0.0.1."""

from __future__ import annotations

import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from visualsearch.errors import FetchError, ImageTooLarge
from visualsearch.ingest import fetch as fetch_module
from visualsearch.ingest.fetch import ImageFetcher, address_refusal


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), (0, 128, 255)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        path = self.path
        if path == "/img.png":
            self._send(200, PNG, "image/png")
        elif path == "/mislabelled":
            self._send(200, PNG, "application/octet-stream")
        elif path == "/page.html":
            self._send(200, b"<html>hello</html>", "text/html")
        elif path == "/missing":
            self._send(404, b"no", "text/plain")
        elif path == "/declared-huge":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            self.wfile.write(PNG)
        elif path == "/endless":  # no Content-Length: the cap must hold while streaming
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            try:
                self.wfile.write(PNG)
                for _ in range(10_000):
                    self.wfile.write(b"\0" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif path.startswith("/redirect-to?"):
            self.send_response(302)
            self.send_header("Location", path.split("?", 1)[1])
            self.end_headers()
        elif path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif path == "/slow":
            time.sleep(3)
            self._send(200, PNG, "image/png")
        else:
            self._send(404, b"", "text/plain")

    def _send(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def local(**kwargs) -> ImageFetcher:
    return ImageFetcher(allow_private=True, **kwargs)


def test_positive_fetch_with_opt_in(server):
    fetched = local().fetch(f"{server}/img.png")
    assert fetched.data == PNG and fetched.format == "PNG"


def test_magic_bytes_win_over_content_type(server):
    assert local().fetch(f"{server}/mislabelled").format == "PNG"


def test_redirect_is_followed(server):
    fetched = local().fetch(f"{server}/redirect-to?/img.png")
    assert fetched.url.endswith("/img.png")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://localhost/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/x.png",
        "http://192.168.0.1/x.png",
        "http://[::1]/x.png",
        "http://0.0.0.0/x.png",
        "http://224.0.0.1/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
    ],
)
def test_private_addresses_are_refused_by_default(url):
    with pytest.raises(FetchError, match="refused"):
        ImageFetcher().fetch(url)


def test_local_server_is_refused_without_opt_in(server):
    with pytest.raises(FetchError, match="loopback"):
        ImageFetcher().fetch(f"{server}/img.png")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/x.png", "gopher://x/", "/etc/passwd", "javascript:alert(1)"]
)
def test_other_schemes_are_refused(url):
    with pytest.raises(FetchError, match="scheme|no host|not a valid"):
        ImageFetcher().fetch(url)


def test_redirect_to_a_private_address_is_refused(server, monkeypatch):
    # Let this test's own loopback server through, but nothing else private.
    monkeypatch.setattr(fetch_module, "address_refusal", lambda ip: None if ip == "127.0.0.1" else address_refusal(ip))
    with pytest.raises(FetchError, match="private|link-local"):
        ImageFetcher().fetch(f"{server}/redirect-to?http://169.254.169.254/latest/meta-data")
    with pytest.raises(FetchError, match="private"):
        ImageFetcher().fetch(f"{server}/redirect-to?http://10.0.0.5/x.png")


def test_redirect_to_file_scheme_is_refused(server):
    with pytest.raises(FetchError, match="scheme"):
        local().fetch(f"{server}/redirect-to?file:///etc/passwd")


def test_redirect_loop_is_bounded(server):
    with pytest.raises(FetchError, match="too many redirects"):
        local(max_redirects=3).fetch(f"{server}/loop")


def test_declared_size_over_cap_is_refused(server):
    with pytest.raises(ImageTooLarge):
        local().fetch(f"{server}/declared-huge")


def test_cap_is_enforced_while_streaming(server):
    started = time.monotonic()
    with pytest.raises(ImageTooLarge):
        local(max_bytes=1_000_000).fetch(f"{server}/endless")
    assert time.monotonic() - started < 5  # stopped early, did not download 650 MB


def test_non_image_body_is_refused(server):
    with pytest.raises(FetchError, match="did not return an image.*text/html"):
        local().fetch(f"{server}/page.html")


def test_http_error_status(server):
    with pytest.raises(FetchError, match="404"):
        local().fetch(f"{server}/missing")


def test_timeout(server):
    with pytest.raises(FetchError, match="timed out"):
        local(timeout=0.5).fetch(f"{server}/slow")


def test_unresolvable_host(monkeypatch):
    # No real DNS query: the machine running the tests may have no (or a non-loopback) resolver.
    def getaddrinfo(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(FetchError, match="resolve"):
        ImageFetcher(timeout=2).fetch("http://does-not-exist.invalid/x.png")
