#!/usr/bin/env python
"""Abuse benchmark: how the API server holds up against hostile clients, all on loopback.

Runs eleven attack classes against live servers on 127.0.0.1 and prints one row per
class: attempts, how many were refused cleanly (answered with the expected status and
error code; for the symlink-escape, crash-leftovers and full-disk classes: checks
passed), the peak server RSS during the class, the latency of ``/healthz`` (max and
p50, probed every 100 ms from a separate thread while the class runs) and whether any
stored file or catalog row was lost (missing, or no longer matching its sha256) or
orphaned (a stored original or thumbnail no catalog row refers to, or a staging file).

Classes: rebinding, cross-site, decode-bomb, symlink-escape, ssrf, slow-drip,
gzip-bomb, url-changed, crash-leftovers, full-disk, small (see ``CLASSES``).

How it runs:

- The main server runs in this process (uvicorn in a thread) with the real default
  model, a temporary library, ``allow_private_urls`` on (so it can fetch from the
  attack HTTP servers this script runs on 127.0.0.1) and one temporary folder root.
  The ssrf class uses a second in-process server with ``allow_private_urls`` off and
  a tiny stand-in model; full-disk uses a third one (tiny model) on a 32 MiB tmpfs
  (root only, else skipped); crash-leftovers starts ``visualsearch serve`` as a
  subprocess and kills it with SIGKILL.
- Peak RSS is VmHWM from /proc, reset at the start of each class through
  /proc/PID/clear_refs. For in-process servers it is this process: server plus load
  generator, whose threads are small (a few MB); for crash-leftovers it is the server
  subprocess (its decode worker processes not included).
- A fence is installed before anything starts: connecting to (or resolving) anything
  but a loopback address raises at once and counts as "fence tripped", a failure.
- Every loop is bounded in count and time; every request has a timeout.

Usage:
    .venv/bin/python benchmarks/abuse.py [--json] [--only CLASS ...] [--keep]

Exit code 0 only if every class that ran met its expectations. Takes a few minutes on
2 cores (model warm-up, a 169-megapixel decode bomb, a 10 s fetch deadline, the 11 s
wait before restarting a killed server).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import ipaddress
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's helpers: tests/support (one LiveServer, one TinyEmbedder)

from tests.support.embedders import TinyEmbedder  # noqa: E402
from tests.support.live import LiveServer, free_port, wait_ready  # noqa: E402

GIB = 1 << 30
MIB = 1 << 20
DECODE_BOMB_RSS_TARGET = 3 * GIB
HEALTH_TARGET_S = 1.0
PROBE_INTERVAL_S = 0.1
PROBE_TIMEOUT_S = 5.0


# --- results -------------------------------------------------------------------------------------


@dataclass
class ClassResult:
    name: str
    attempts: int = 0
    clean: int = 0
    peak_rss_mb: float | None = None
    rss_start_mb: float | None = None
    rss_end_mb: float | None = None
    health_max_ms: float | None = None
    health_p50_ms: float | None = None
    health_probes: int = 0
    health_failures: int = 0
    lost: int = 0
    orphans: int = 0
    fence_tripped: int = 0
    seconds: float = 0.0
    skipped: str | None = None
    unexpected: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.skipped is not None or not self.failures

    def tally(self, answer: Answer, clean: bool) -> None:
        self.attempts += 1
        self.clean += clean
        self.unexpected += not clean
        self.statuses[answer.label] = self.statuses.get(answer.label, 0) + 1

    def check(self, passed: bool, what: str) -> bool:
        """One check counted as an attempt; a failed one is a failure of the class."""
        self.attempts += 1
        self.clean += passed
        if not passed:
            self.failures.append(what)
        return passed

    def expect(self, passed: bool, what: str) -> bool:
        """A condition that is not an attempt (setup, targets) but must hold."""
        if not passed:
            self.failures.append(what)
        return passed


@dataclass
class Answer:
    """One HTTP answer, reduced to what the checks need (status None: no answer at all)."""

    status: int | None
    code: str | None = None
    reason: str | None = None
    seconds: float = 0.0
    retry_after: str | None = None
    body: object = None
    error: str | None = None

    @property
    def label(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return " ".join(str(p) for p in (self.status, self.code, self.reason and f"reason={self.reason}") if p)

    def is_(self, status: int, code: str | None = None, reason: str | None = None) -> bool:
        return (
            self.status == status and (code is None or self.code == code) and (reason is None or self.reason == reason)
        )


def answer_of(response: httpx.Response, seconds: float) -> Answer:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    code = reason = None
    if isinstance(error, dict):
        code = error.get("code")
        details = error.get("details")
        reason = details.get("reason") if isinstance(details, dict) else None
    return Answer(response.status_code, code, reason, seconds, response.headers.get("retry-after"), body)


def call(client: httpx.Client, method: str, path: str, **kwargs) -> Answer:
    started = time.monotonic()
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        return Answer(None, seconds=time.monotonic() - started, error=type(exc).__name__)
    return answer_of(response, time.monotonic() - started)


def in_parallel(jobs: list[Callable[[], Answer]], workers: int, timeout: float) -> list[Answer]:
    """Run ``jobs`` on ``workers`` threads; each must end by itself (client timeouts)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="abuse-client") as pool:
        futures = [pool.submit(job) for job in jobs]
        out = []
        for future in futures:
            try:
                out.append(future.result(timeout=timeout))
            except Exception as exc:  # a client thread that broke is reported, not raised
                out.append(Answer(None, error=f"{type(exc).__name__}: {exc}"))
        return out


# --- the network fence -----------------------------------------------------------------------------


def is_loopback_host(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).strip("[]").split("%")[0].lower()
    if name == "localhost":
        return True
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def is_ip_literal(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ipaddress.ip_address(str(host).strip("[]").split("%")[0])
        return True
    except ValueError:
        return False


class Fence:
    """Refuse, in this whole process, every connection and name lookup that is not loopback.

    ``socket.socket.connect`` / ``connect_ex`` and ``socket.create_connection`` raise for a
    non-loopback address; ``socket.getaddrinfo`` answers only IP literals and ``localhost``
    (a literal resolves without any traffic; the connect fence judges it). Every refusal is
    counted in ``tripped``: the server tried to reach something it must not.
    """

    def __init__(self) -> None:
        self.tripped = 0
        self.blocked: list[str] = []
        self._lock = threading.Lock()

    def _trip(self, what: str) -> None:
        with self._lock:
            self.tripped += 1
            if len(self.blocked) < 20:
                self.blocked.append(what)

    def install(self) -> None:
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
        real_create, real_getaddrinfo = socket.create_connection, socket.getaddrinfo
        fence = self

        def check(family: int, address: object) -> None:
            if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
                if not is_loopback_host(address[0]):
                    fence._trip(f"connect {address[0]}")
                    raise ConnectionRefusedError(f"abuse benchmark fence: connection to {address[0]} blocked")

        def connect(sock: socket.socket, address: object) -> None:
            check(sock.family, address)
            return real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: object) -> int:
            check(sock.family, address)
            return real_connect_ex(sock, address)

        def create_connection(address, *args, **kwargs):
            if not is_loopback_host(address[0]):
                fence._trip(f"create_connection {address[0]}")
                raise ConnectionRefusedError(f"abuse benchmark fence: connection to {address[0]} blocked")
            return real_create(address, *args, **kwargs)

        def getaddrinfo(host, *args, **kwargs):
            if host is None or is_ip_literal(host) or is_loopback_host(host):
                return real_getaddrinfo(host, *args, **kwargs)
            fence._trip(f"resolve {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, "abuse benchmark fence: name resolution blocked")

        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.create_connection = create_connection  # type: ignore[assignment]
        socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
        # Everything this process uses (httpx/httpcore, uvicorn, asyncio, http.server) reaches the
        # network through these names at call time; make sure they are the fenced ones.
        assert socket.socket.connect is connect and socket.create_connection is create_connection


# --- memory and health ----------------------------------------------------------------------------


def _status_kb(pid: int | str, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def reset_peak_rss(pid: int | str = "self") -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass  # older kernels: VmHWM then is the peak since the process started


class Probe:
    """GET /healthz every 100 ms in its own thread; latency of each answer (a failure counts its time)."""

    def __init__(self, url: str):
        self.url = url
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="abuse-healthz", daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=PROBE_TIMEOUT_S) as client:
            while True:  # at least one probe, even for a class shorter than one interval
                started = time.monotonic()
                try:
                    ok = client.get(f"{self.url}/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.monotonic() - started
                self.latencies.append(elapsed)
                self.failures += not ok
                if self._stop.wait(max(0.0, PROBE_INTERVAL_S - elapsed)):
                    return

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT_S + 1)


@contextmanager
def measured(result: ClassResult, url: str, pid: int | str = "self") -> Iterator[Probe]:
    """Reset the peak RSS of ``pid`` and probe ``url``/healthz while the block runs."""
    reset_peak_rss(pid)
    start_kb = _status_kb(pid, "VmRSS")
    probe = Probe(url)
    try:
        with probe:
            yield probe
    finally:
        peak_kb = _status_kb(pid, "VmHWM")
        end_kb = _status_kb(pid, "VmRSS")
        result.rss_end_mb = None if end_kb is None else round(end_kb / 1024, 1)
        result.rss_start_mb = None if start_kb is None else round(start_kb / 1024, 1)
        result.peak_rss_mb = None if peak_kb is None else round(peak_kb / 1024, 1)
        if probe.latencies:
            result.health_max_ms = round(max(probe.latencies) * 1000, 1)
            result.health_p50_ms = round(statistics.median(probe.latencies) * 1000, 1)
        result.health_probes = len(probe.latencies)
        result.health_failures = probe.failures


# --- library integrity ----------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


class LibraryAudit:
    """Lost and orphaned data in one library folder, read straight from disk and the catalog.

    Lost: an indexed catalog row whose file is gone, or (for the library's own copies) no
    longer has the row's sha256. Orphaned: a file under originals/ or thumbnails/ whose
    digest no row has, a temporary file there, or any file under staging/. Each finding is
    reported once (by the first class that sees it).
    """

    def __init__(self, library: Path):
        self.library = library
        self.seen_lost: set[str] = set()
        self.seen_orphans: set[str] = set()

    def _rows(self) -> list[tuple]:
        db = self.library / "catalog.sqlite"
        if not db.exists():
            return []
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute("SELECT id, sha256, path, source, status FROM assets").fetchall()
        finally:
            conn.close()

    def findings(self) -> tuple[list[str], list[str]]:
        rows = self._rows()
        known = {sha for _, sha, _, _, _ in rows if sha}
        originals = self.library / "originals"
        lost = []
        for asset_id, sha, path, source, status in rows:
            if status != "indexed":
                continue
            file = Path(path or source)
            if not file.is_file():
                lost.append(f"asset {asset_id}: {file} missing")
            elif originals in file.parents and sha and sha256_file(file) != sha:
                lost.append(f"asset {asset_id}: {file} does not match its sha256")
        orphans = []
        for folder in (originals, self.library / "thumbnails"):
            if folder.is_dir():
                for p in folder.glob("*/*"):
                    if p.is_file() and (p.suffix in (".tmp", ".part") or p.name.split(".")[0] not in known):
                        orphans.append(str(p))
        staging = self.library / "staging"
        if staging.is_dir():
            orphans += [str(p) for p in staging.rglob("*") if p.is_file()]
        return lost, orphans

    def record(self, result: ClassResult) -> None:
        lost, orphans = self.findings()
        new_lost = [x for x in lost if x not in self.seen_lost]
        new_orphans = [x for x in orphans if x not in self.seen_orphans]
        self.seen_lost.update(new_lost)
        self.seen_orphans.update(new_orphans)
        result.lost += len(new_lost)
        result.orphans += len(new_orphans)
        for x in new_lost[:5]:
            result.notes.append(f"lost: {x}")
        for x in new_orphans[:5]:
            result.notes.append(f"orphan: {x}")
        result.expect(not new_lost, f"{len(new_lost)} catalog row(s) lost their file")
        result.expect(not new_orphans, f"{len(new_orphans)} orphaned file(s)")


# --- servers --------------------------------------------------------------------------------------


@dataclass
class Target:
    """A running in-process server and what the checks need to know about it."""

    live: LiveServer
    library: Path
    allowed: Path
    settings: object
    audit: LibraryAudit
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def port(self) -> int:
        return self.live.port


class AttackServer:
    """A small HTTP server on 127.0.0.1 (daemon threads) that plays the hostile web site."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="abuse-attack-server", daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> AttackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass


# --- images and payloads --------------------------------------------------------------------------


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def noise_png(seed: int, width: int = 64, height: int = 48) -> bytes:
    """Random pixels: a unique image per seed (about 3 bytes per pixel as PNG)."""
    rng = np.random.default_rng(seed)
    return png_bytes(Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB"))


def png_with_text(png: bytes, text: str) -> bytes:
    """The same picture with a tEXt chunk after IHDR: other bytes (and sha256), same pixels."""
    data = b"Comment\x00" + text.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    ihdr_end = 8 + 4 + 4 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def decode_bomb_png(side: int = 13000) -> bytes:
    """A 16-bit greyscale PNG of ``side`` x ``side`` pixels, almost all flat: ~330 KB on the wire."""
    arr = np.zeros((side, side), dtype=np.uint16)
    arr[side // 3 : side // 2, side // 3 : side // 2] = 40000
    image = Image.fromarray(arr)
    del arr
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def gzip_bomb(inflated: int = GIB) -> bytes:
    """A gzip stream of ``inflated`` zero bytes (about 1 MiB), built 1 MiB at a time."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MIB)
    parts = [compressor.compress(zeros) for _ in range(inflated // MIB)]
    parts.append(compressor.flush())
    return b"".join(parts)


def made_elsewhere(maker: Callable[[], bytes]) -> bytes:
    """``maker()`` run in a child Python: its big temporary buffers never touch this process's allocator
    (glibc raises its mmap threshold after freeing large blocks, which would change how the server's
    own allocations behave, and so its RSS)."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import abuse; "
        f"sys.stdout.buffer.write(abuse.{maker.__name__}())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300, check=True)
    return out.stdout


def raw_request(port: int, request: bytes, timeout: float = 10.0) -> Answer:
    """Send bytes as they are (httpx would set the Host header itself); read at most 1 MiB back."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(request)
            data = b""
            while len(data) < MIB and (chunk := sock.recv(65536)):
                data += chunk
    except OSError as exc:
        return Answer(None, seconds=time.monotonic() - started, error=type(exc).__name__)
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split()[1])
    except (IndexError, ValueError):
        return Answer(None, seconds=time.monotonic() - started, error="unparsable answer")
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    return Answer(status, error.get("code"), None, time.monotonic() - started)


def wait_for_job(client: httpx.Client, url: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = client.get(url).json()
        if job.get("status") in ("done", "failed"):
            return job
        time.sleep(0.2)
    return job


def wait_for_all_jobs(client: httpx.Client, timeout: float) -> list[dict]:
    """The jobs still queued or running after ``timeout`` (empty: all finished)."""
    deadline = time.monotonic() + timeout
    active: list[dict] = []
    while time.monotonic() < deadline:
        active = [
            j for j in client.get("/api/jobs", params={"limit": 200}).json() if j["status"] in ("queued", "running")
        ]
        if not active:
            return []
        time.sleep(0.5)
    return active


def asset_total(client: httpx.Client) -> int:
    return client.get("/api/assets", params={"status": "all", "limit": 1}).json()["total"]


# --- context: servers started on demand -----------------------------------------------------------


class Context:
    def __init__(self, workdir: Path, cache_dir: Path, fence: Fence):
        self.workdir = workdir
        self.cache_dir = cache_dir
        self.fence = fence
        self._targets: dict[str, Target] = {}
        self._stack: list[Callable[[], None]] = []
        self.model_id: str | None = None
        self.warmup: dict[str, list[str]] = {}

    def _start(self, name: str, *, embedder=None, **overrides) -> Target:
        from visualsearch.api import create_app
        from visualsearch.config import Settings

        base = self.workdir / name
        allowed = base / "allowed"
        allowed.mkdir(parents=True, exist_ok=True)
        settings = Settings.from_env(base / "library", folder_roots=(allowed,), rate_limit_per_minute=0, **overrides)
        app = create_app(settings, embedder=embedder, require_keys=False)
        live = LiveServer(app, start_timeout=60, thread_name="abuse-uvicorn").__enter__()
        self._stack.append(lambda: live.__exit__(None, None, None))
        took = live.wait_ready(300)
        client = httpx.Client(base_url=live.url, timeout=120)
        self._stack.append(client.close)
        target = Target(
            live, settings.library_dir, settings.folder_roots[0], settings, LibraryAudit(settings.library_dir), client
        )
        # /readyz does not wait for the model's weights: one text and one image search load them,
        # so that memory figures include the resident model.
        warm = [
            call(client, "POST", "/api/search", json={"text": "a red car"}),
            call(client, "POST", "/api/search/image", files={"file": ("w.png", noise_png(7), "image/png")}),
        ]
        stats = client.get("/api/stats").json()
        print(
            f"[{name} server on {live.url}: model {stats.get('model_id')}, ready in {took:.1f} s, warm-up "
            f"searches {[a.label for a in warm]}, RSS {_status_kb('self', 'VmRSS') / 1024:.0f} MiB]",
            file=sys.stderr,
            flush=True,
        )
        self.warmup[name] = [a.label for a in warm]
        return target

    def main(self) -> Target:
        """The main server: real default model, private URLs allowed (the attack servers are on loopback)."""
        if "main" not in self._targets:
            self._targets["main"] = self._start("main", allow_private_urls=True)
            self.model_id = self._targets["main"].client.get("/api/stats").json().get("model_id")
        return self._targets["main"]

    def ssrf(self) -> Target:
        """A second server with the SSRF check on (private URLs refused) and a tiny model."""
        if "ssrf" not in self._targets:
            self._targets["ssrf"] = self._start(
                "ssrf", embedder=TinyEmbedder(), allow_private_urls=False, decode_workers=0
            )
        return self._targets["ssrf"]

    def close(self) -> None:
        while self._stack:
            try:
                self._stack.pop()()
            except Exception as exc:  # carry on closing the rest
                print(f"while stopping: {exc}", file=sys.stderr)


# --- the classes ----------------------------------------------------------------------------------


def run_rebinding(ctx: Context, r: ClassResult) -> None:
    """DNS rebinding: a foreign Host header is refused with 421 host_not_allowed."""
    t = ctx.main()
    jobs_before = len(t.client.get("/api/jobs").json())
    host = f"attacker.example:{t.port}".encode()
    body = json.dumps({"path": str(t.allowed)}).encode()
    get = b"GET /api/stats HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host
    post = (
        b"POST /api/folders HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (host, len(body), body)
    )
    with measured(r, t.url):
        answers = in_parallel(
            [lambda req=(get if i % 2 == 0 else post): raw_request(t.port, req) for i in range(50)],
            workers=8,
            timeout=60,
        )
    for a in answers:
        r.tally(a, a.is_(421, "host_not_allowed"))
    control = raw_request(
        t.port, b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % t.port
    )
    r.expect(control.status == 200, f"control request with Host 127.0.0.1 answered {control.label}")
    jobs_after = len(t.client.get("/api/jobs").json())
    r.expect(jobs_after == jobs_before, f"{jobs_after - jobs_before} folder job(s) created through a foreign Host")
    t.audit.record(r)


def run_cross_site(ctx: Context, r: ClassResult) -> None:
    """Cross-site uploads and reads from a browser page are refused with 403 cross_origin."""
    t = ctx.main()
    before = asset_total(t.client)
    image = noise_png(101)
    sha = hashlib.sha256(image).hexdigest()
    origins = ["https://evil.example", f"http://127.0.0.1:{t.port + 1}"]

    def upload(i: int) -> Answer:
        return call(
            t.client,
            "POST",
            "/api/assets",
            headers={"Origin": origins[i % 2]},
            files=[("files", (f"x{i}.png", image, "image/png"))],
        )

    def read(i: int) -> Answer:
        return call(t.client, "GET", "/api/stats" if i % 2 else "/api/assets", headers={"Sec-Fetch-Site": "cross-site"})

    jobs = [lambda i=i: upload(i) for i in range(50)] + [lambda i=i: read(i) for i in range(20)]
    with measured(r, t.url):
        answers = in_parallel(jobs, workers=8, timeout=120)
    for a in answers:
        r.tally(a, a.is_(403, "cross_origin"))
    after = asset_total(t.client)
    found = t.client.get("/api/assets", params={"status": "all", "q": "x"}).json()["items"]
    r.expect(after == before, f"the library went from {before} to {after} assets")
    r.expect(all(a["sha256"] != sha for a in found), "the cross-site image is in the library")
    r.notes.append(f"library: {before} assets before, {after} after (unchanged = nothing got in)")
    t.audit.record(r)


def run_decode_bomb(ctx: Context, r: ClassResult) -> None:
    """A 13000x13000 16-bit PNG (~330 KB) searched and uploaded 8 times each, all at once."""
    t = ctx.main()
    made = time.monotonic()
    bomb = made_elsewhere(decode_bomb_png)
    r.notes.append(
        f"bomb: 13000x13000 I;16 PNG of {len(bomb) / 1024:.0f} KB "
        f"({13000 * 13000 * 2 / MIB:.0f} MiB of 16-bit pixels), made in {time.monotonic() - made:.1f} s"
    )

    def search() -> Answer:
        return call(t.client, "POST", "/api/search/image", files={"file": ("bomb.png", bomb, "image/png")})

    def upload(i: int) -> Answer:
        data = png_with_text(bomb, f"copy {i}")  # other bytes, so no upload is a byte-identical duplicate
        return call(t.client, "POST", "/api/assets", files=[("files", (f"bomb{i}.png", data, "image/png"))])

    jobs: list[Callable[[], Answer]] = []
    for i in range(8):
        jobs += [search, lambda i=i: upload(i)]
    with measured(r, t.url):
        answers = in_parallel(jobs, workers=16, timeout=300)
    for n, a in enumerate(answers):
        ok_status = 200 if n % 2 == 0 else 201
        r.tally(a, a.status == ok_status or a.is_(413, "too_large") or a.is_(503, "busy"))
    busy = [a for a in answers if a.is_(503, "busy")]
    r.expect(all(a.retry_after for a in busy), "a 503 busy without Retry-After")
    if r.peak_rss_mb is not None:
        passed = r.peak_rss_mb * MIB < DECODE_BOMB_RSS_TARGET
        r.notes.append(
            f"TARGET peak RSS < {DECODE_BOMB_RSS_TARGET / GIB:.0f} GiB: {r.peak_rss_mb:.0f} MiB "
            f"-> {'PASS' if passed else 'FAIL'}"
        )
        r.expect(passed, f"peak RSS {r.peak_rss_mb:.0f} MiB over the {DECODE_BOMB_RSS_TARGET / GIB:.0f} GiB target")
    r.notes.append("slowest answer: %.1f s" % max((a.seconds for a in answers), default=0))
    t.audit.record(r)


def run_symlink_escape(ctx: Context, r: ClassResult) -> None:
    """Folder jobs never index files outside the allowed folder; paths outside the roots are 403."""
    t = ctx.main()
    outside = t.allowed.parent / "outside"
    outside.mkdir(exist_ok=True)
    Image.open(io.BytesIO(noise_png(201))).save(outside / "private.png")
    (outside / "secret.txt").write_text("root:$6$hash:19000:0:99999:7:::\n")
    folder = t.allowed / "symlinks"
    folder.mkdir(exist_ok=True)
    Image.open(io.BytesIO(noise_png(202))).save(folder / "mine.png")
    for link, target in (
        ("private.png", outside / "private.png"),
        ("secret.png", outside / "secret.txt"),
        ("inside.png", folder / "mine.png"),
    ):
        if not (folder / link).is_symlink():
            (folder / link).symlink_to(target)
    if not (folder / "stuck.png").exists():
        os.mkfifo(folder / "stuck.png")
    second = t.allowed / "second"
    second.mkdir(exist_ok=True)
    Image.open(io.BytesIO(noise_png(203))).save(second / "two.png")
    (t.allowed / "escape").unlink(missing_ok=True)
    (t.allowed / "escape").symlink_to(outside)

    with measured(r, t.url):
        first = call(t.client, "POST", "/api/folders", json={"path": str(folder)})
        job1 = wait_for_job(t.client, first.body["status_url"], 120) if first.status == 202 else {}
        r.check(job1.get("status") == "done", f"folder job with links and a FIFO: {first.label}, job {job1}")
        then = call(t.client, "POST", "/api/folders", json={"path": str(second)})
        job2 = wait_for_job(t.client, then.body["status_url"], 120) if then.status == 202 else {}
        r.check(job2.get("status") == "done", f"second folder job: {then.label}, job {job2}")
        for path, what in (
            (outside, "present"),
            (t.allowed.parent / "no-such-folder", "missing"),
            (t.allowed / "escape", "link to outside"),
        ):
            a = call(t.client, "POST", "/api/folders", json={"path": str(path)})
            r.statuses[a.label] = r.statuses.get(a.label, 0) + 1
            r.check(a.is_(403, "folder_not_allowed"), f"folder outside the roots ({what}) answered {a.label}")
    items = t.client.get("/api/assets", params={"status": "all", "limit": 200}).json()["items"]
    sources = sorted(a["source"] for a in items if a["origin"] == "folder")
    secret_sha = {sha256_file(outside / "private.png"), sha256_file(outside / "secret.txt")}
    escaped = [s for s in sources if not Path(s).is_relative_to(t.allowed)] + [
        a["source"] for a in items if a["sha256"] in secret_sha
    ]
    r.check(not escaped, f"assets from outside the allowed folder: {escaped}")
    r.expect(str(folder / "mine.png") in sources, f"mine.png was not indexed (sources {sources})")
    r.notes.append(
        f"indexed from the folders: {[Path(s).name for s in sources]}; job 1 done={job1.get('done')} "
        f"failed={job1.get('failed')}"
    )
    t.audit.record(r)


SSRF_ADDRESSES = [
    "100.100.100.200",
    "100.64.0.1",
    "[2002:7f00:1::]",
    "[fec0::1]",
    "[::ffff:169.254.169.254]",
    "10.0.0.1",
    "169.254.169.254",
]


def run_ssrf(ctx: Context, r: ClassResult) -> None:
    """URL searches to metadata and private address literals: 400 url_refused, reason private_address."""
    t = ctx.ssrf()
    tripped = ctx.fence.tripped
    urls = [f"http://{SSRF_ADDRESSES[i % len(SSRF_ADDRESSES)]}/latest/meta-data/x.png" for i in range(30)]
    with measured(r, t.url):
        answers = in_parallel(
            [lambda u=u: call(t.client, "POST", "/api/search", json={"image_url": u}) for u in urls],
            workers=4,
            timeout=120,
        )
    for url, a in zip(urls, answers):
        r.tally(a, a.is_(400, "url_refused", "private_address"))
        if not a.is_(400, "url_refused", "private_address"):
            r.notes.append(f"{url} -> {a.label}")
    r.fence_tripped = ctx.fence.tripped - tripped
    r.expect(r.fence_tripped == 0, f"fence tripped {r.fence_tripped} time(s): {ctx.fence.blocked}")
    r.notes.append(f"second server (allow_private_urls=False, tiny model); fence tripped: {r.fence_tripped}")
    t.audit.record(r)


class DripHandler(QuietHandler):
    """Headers at once, then one body byte per second, for at most 30 s per connection."""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        try:
            for _ in range(30):
                self.wfile.write(b"\x89")
                self.wfile.flush()
                time.sleep(1.0)
        except OSError:
            pass
        self.close_connection = True


def run_slow_drip(ctx: Context, r: ClassResult) -> None:
    """50 parallel URL searches to a server that drips 1 byte/s: /healthz must stay under 1 s."""
    t = ctx.main()
    deadline = t.settings.fetch_timeout
    with AttackServer(DripHandler) as drip, measured(r, t.url) as probe:
        url = drip.url("/slow.png")
        answers = in_parallel(
            [lambda: call(t.client, "POST", "/api/search", json={"image_url": url}) for _ in range(50)],
            workers=50,
            timeout=120,
        )
    for a in answers:
        timed_out = a.is_(400, "url_refused", "timeout") and a.seconds <= deadline + 2.0
        r.tally(a, timed_out or a.is_(503, "busy"))
    slow = [a.seconds for a in answers if a.is_(400, "url_refused", "timeout")]
    if slow:
        r.notes.append(f"timeouts answered after {min(slow):.1f}-{max(slow):.1f} s (fetch deadline {deadline:.0f} s)")
    worst = max(probe.latencies, default=float("inf"))
    passed = worst < HEALTH_TARGET_S and probe.failures == 0
    r.notes.append(
        f"TARGET /healthz < {HEALTH_TARGET_S:.0f} s throughout: max {worst * 1000:.0f} ms over "
        f"{len(probe.latencies)} probes -> {'PASS' if passed else 'FAIL'}"
    )
    r.expect(passed, f"/healthz took up to {worst * 1000:.0f} ms ({probe.failures} failed) during the drip")
    t.audit.record(r)


def run_gzip_bomb(ctx: Context, r: ClassResult) -> None:
    """8 parallel URL searches answered with ~1 MiB of gzip that inflates to 1 GiB."""
    t = ctx.main()
    made = time.monotonic()
    body = made_elsewhere(gzip_bomb)
    r.notes.append(f"bomb: {len(body) / MIB:.2f} MiB gzip -> 1 GiB of zeros, made in {time.monotonic() - made:.1f} s")

    class GzipHandler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass
            self.close_connection = True

    with AttackServer(GzipHandler) as bomb, measured(r, t.url):
        url = bomb.url("/bomb.png")
        answers = in_parallel(
            [lambda: call(t.client, "POST", "/api/search", json={"image_url": url}) for _ in range(8)],
            workers=8,
            timeout=120,
        )
    for a in answers:
        r.tally(a, a.is_(413, "too_large") or (a.is_(400, "url_refused") and a.reason in ("too_large", "encoding")))
    if r.peak_rss_mb is not None and r.rss_start_mb is not None:
        r.notes.append(
            f"peak RSS {r.peak_rss_mb:.0f} MiB ({r.peak_rss_mb - r.rss_start_mb:+.0f} MiB over the start of the class)"
        )
    t.audit.record(r)


def run_url_changed(ctx: Context, r: ClassResult) -> None:
    """Re-adding a URL whose image changed: 409 url_changed, the first image kept, no orphan."""
    t = ctx.main()
    state = {"body": noise_png(301)}

    class ChangingHandler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802
            data = state["body"]
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    first_image = state["body"]
    with AttackServer(ChangingHandler) as site, measured(r, t.url):
        url = site.url("/pic.png")
        first = call(t.client, "POST", "/api/assets/url", json={"url": url})
        if r.expect(first.status == 201, f"first add of the URL answered {first.label}"):
            first_id = first.body["id"]
            for i in range(10):
                state["body"] = noise_png(310 + i)
                a = call(t.client, "POST", "/api/assets/url", json={"url": url})
                error = a.body.get("error") if isinstance(a.body, dict) else None
                details = (error or {}).get("details") or {}
                r.tally(a, a.is_(409, "url_changed") and details.get("asset_id") == first_id)
            kept = t.client.get(f"/api/assets/{first_id}").json()
            original = t.client.get(f"/api/assets/{first_id}/original")
            r.expect(kept.get("sha256") == hashlib.sha256(first_image).hexdigest(), "the first asset's sha256 changed")
            r.expect(original.content == first_image, "the first asset's original is not the first image")
            same_url = [
                a
                for a in t.client.get("/api/assets", params={"status": "all", "q": url}).json()["items"]
                if a["source"] == url
            ]
            r.expect(len(same_url) == 1, f"{len(same_url)} assets with the URL as source")
    t.audit.record(r)


# -- crash leftovers (subprocess) --


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """Every live descendant of ``pid`` -> its start time (to tell it from a reused pid)."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _proc_stat(int(entry.name))
            if st is not None and st[0] != "Z":
                children.setdefault(st[1], []).append((int(entry.name), st[2]))
    found: dict[int, int] = {}
    todo = [pid]
    while todo and len(found) < 1000:
        for child, started in children.get(todo.pop(), []):
            if child not in found:
                found[child] = started
                todo.append(child)
    return found


def still_running(procs: dict[int, int]) -> list[int]:
    alive = []
    for pid, started in procs.items():
        st = _proc_stat(pid)
        if st is not None and st[0] != "Z" and st[2] == started:
            alive.append(pid)
    return alive


class ServeProcess:
    """``visualsearch serve`` as users run it, in its own process; output to a log file."""

    def __init__(self, library: Path, allowed: Path, cache_dir: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("visualsearch")
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "visualsearch"]
        command += [
            "serve",
            "--library",
            str(library),
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--folder-root",
            str(allowed),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VISUALSEARCH_")}
        env["VISUALSEARCH_CACHE_DIR"] = str(cache_dir)
        self._log = open(log, "ab")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


def run_crash_leftovers(ctx: Context, r: ClassResult) -> None:
    """SIGKILL a `visualsearch serve` in the middle of uploads and a folder job; restart; count leftovers."""
    base = ctx.workdir / "crash"
    library, allowed = base / "library", base / "allowed"
    (allowed / "pics").mkdir(parents=True, exist_ok=True)
    for i in range(80):  # >= 64 files: the folder job decodes in worker processes
        Image.open(io.BytesIO(noise_png(1000 + i, 320, 240))).save(allowed / "pics" / f"p{i:03}.png")
    big = [noise_png(2000 + i, 600, 600) for i in range(54)]  # ~1 MB each
    r.notes.append(
        f"payload: 1 upload of 30 PNGs + 3 uploads of 8 (each ~{len(big[0]) / MIB:.1f} MB, "
        "background=false) + a folder job of 80 PNGs"
    )
    log = base / "serve.log"
    server = ServeProcess(library, allowed, ctx.cache_dir, log)
    restarted: ServeProcess | None = None
    try:
        took = wait_ready(server.url, 300, server.process)
        with httpx.Client(base_url=server.url, timeout=120) as client:  # load the model's weights first
            warm = [
                call(client, "POST", "/api/search", json={"text": "a red car"}),
                call(client, "POST", "/api/search/image", files={"file": ("w.png", noise_png(7), "image/png")}),
            ]
        r.notes.append(
            f"subprocess server ready in {took:.1f} s (pid {server.process.pid}); warm-up searches "
            f"{[a.label for a in warm]}"
        )
        answers: dict[str, Answer] = {}
        with httpx.Client(base_url=server.url, timeout=60) as client, measured(r, server.url, server.process.pid):
            folder_job = call(client, "POST", "/api/folders", json={"path": str(allowed / "pics")})
            r.expect(folder_job.status == 202, f"folder job answered {folder_job.label}")
            groups = {
                "30 files": big[:30],
                "8 files #1": big[30:38],
                "8 files #2": big[38:46],
                "8 files #3": big[46:54],
            }

            def upload(name: str, files: list[bytes]) -> None:
                with httpx.Client(base_url=server.url, timeout=60) as c:
                    answers[name] = call(
                        c,
                        "POST",
                        "/api/assets",
                        data={"background": "false"},
                        files=[("files", (f"u{n}.png", d, "image/png")) for n, d in enumerate(files)],
                    )

            threads = [threading.Thread(target=upload, args=item, daemon=True) for item in groups.items()]
            for thread in threads:
                thread.start()
            threads[0].join(10)  # the 30-file request is answered (202: a job) once its body is staged
            time.sleep(0.75)
        workers = descendants(server.process.pid)
        killed_at = time.monotonic()
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        for thread in threads:
            thread.join(70)
        r.notes.append(
            "at the kill: "
            + "; ".join(f"{k}: {a.label}" for k, a in sorted(answers.items()))
            + f"; {len(workers)} child process(es) {sorted(workers)}"
        )
        left = list(workers)
        while left and time.monotonic() - killed_at < 5.0:
            time.sleep(0.1)
            left = still_running(workers)
        r.check(not left, f"child processes still running 5 s after the kill: {left}")
        for pid in left:  # ours (children of the server we started): end them by id
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not workers:
            r.notes.append("no child process was running at the kill: the worker check is vacuous")
        lost_before, orphans_before = LibraryAudit(library).findings()
        where = Counter(Path(o).relative_to(library).parts[0] for o in orphans_before)
        r.notes.append(
            f"left by the crash: {len(orphans_before)} file(s) without a catalog row {dict(where)} "
            f"(staging includes the files of the queued upload job, which the restart resumes), "
            f"{len(lost_before)} row(s) without file; waiting 11 s (start-up removes leftovers older "
            "than 10 s) before the restart"
        )
        time.sleep(max(0.0, 11.0 - (time.monotonic() - killed_at)))
        server.stop()
        restarted = ServeProcess(library, allowed, ctx.cache_dir, log)
        ready = True
        try:
            took = wait_ready(restarted.url, 300, restarted.process)
            r.notes.append(f"restarted server ready in {took:.1f} s")
        except RuntimeError as exc:
            ready = False
            r.notes.append(f"restart: {exc}")
        r.check(ready, "the restarted server did not become ready")
        if ready:
            with httpx.Client(base_url=restarted.url, timeout=60) as client:
                active = wait_for_all_jobs(client, 300)
                r.check(not active, f"jobs still active 300 s after the restart: {[j['id'] for j in active]}")
                jobs = client.get("/api/jobs", params={"limit": 200}).json()
                r.notes.append(
                    "jobs after restart: "
                    + ", ".join(
                        f"{j['kind']} {j['status']} {j['done']}/{j['total']} failed {j['failed']}" for j in jobs
                    )
                )
                r.notes.append(f"assets after restart: {asset_total(client)}")
        restarted.stop()
        lost, orphans = LibraryAudit(library).findings()
        r.check(not orphans, f"{len(orphans)} orphaned file(s) after the restart: {orphans[:5]}")
        r.check(not lost, f"{len(lost)} catalog row(s) without their file after the restart: {lost[:5]}")
        r.lost, r.orphans = len(lost), len(orphans)
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()
    if r.failures:
        r.notes.append(f"server log: {log}")


# -- full disk --


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` (bounded by its size); delete the returned file to free it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (MIB, 4096, 1):
            for _ in range(1 << 16):
                try:
                    os.write(fd, b"\0" * block)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


def run_full_disk(ctx: Context, r: ClassResult) -> None:
    """A library on a full 32 MiB tmpfs: 507 insufficient_storage, nothing lost, recovers once freed."""
    if os.geteuid() != 0:
        r.skipped = "needs root"
        return
    from visualsearch.api import create_app
    from visualsearch.config import Settings

    disk = ctx.workdir / "disk"
    disk.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)], check=True, timeout=30)
    try:
        (disk / "allowed").mkdir()
        settings = Settings.from_env(
            disk / "library", decode_workers=0, folder_roots=(disk / "allowed",), rate_limit_per_minute=0
        )
        app = create_app(settings, embedder=TinyEmbedder(), require_keys=False)
        with (
            LiveServer(app, start_timeout=60, thread_name="abuse-uvicorn") as live,
            httpx.Client(base_url=live.url, timeout=60) as client,
        ):
            live.wait_ready(300)
            r.notes.append("own in-process server, tiny model, library on a 32 MiB tmpfs")
            first_png = noise_png(401)
            first = call(client, "POST", "/api/assets", files=[("files", ("first.png", first_png, "image/png"))])
            if not r.expect(first.status == 201, f"first upload answered {first.label}"):
                return
            asset = first.body["items"][0]["asset"]
            with measured(r, live.url):
                filler = fill(disk)
                r.notes.append(
                    f"filler: {filler.stat().st_size / MIB:.1f} MiB; free: {shutil.disk_usage(disk).free} bytes"
                )
                for i in range(10):
                    a = call(
                        client,
                        "POST",
                        "/api/assets",
                        files=[("files", (f"b{i}.png", noise_png(410 + i, 300, 300), "image/png"))],
                    )
                    r.tally(a, a.is_(507, "insufficient_storage"))
                a = call(
                    client, "PUT", f"/api/assets/{asset['id']}/tags", json={"tags": [f"tag{n}" for n in range(20)]}
                )
                r.tally(a, a.is_(507, "insufficient_storage"))
                if not a.is_(507, "insufficient_storage"):
                    r.notes.append(f"tag update on the full disk: {a.label} {str(a.body)[:200]}")
                alive = live.thread.is_alive() and call(client, "GET", "/healthz").status == 200
                r.check(alive, "the server did not survive the full disk")
                listed = client.get("/api/assets", params={"status": "all"}).json()
                ids = [x["id"] for x in listed["items"]]
                r.check(asset["id"] in ids, f"the first image is no longer listed ({ids})")
                original = client.get(f"/api/assets/{asset['id']}/original")
                r.check(
                    original.status_code == 200 and original.content == first_png,
                    f"the first image's file is not intact ({original.status_code})",
                )
                filler.unlink()
                again = call(
                    client,
                    "POST",
                    "/api/assets",
                    files=[("files", ("again.png", noise_png(430, 300, 300), "image/png"))],
                )
                r.check(again.status == 201, f"upload after freeing the disk answered {again.label}")
            LibraryAudit(settings.library_dir).record(r)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, timeout=30)


def run_small(ctx: Context, r: ClassResult) -> None:
    """A cursor past int64 and a blank key name: 422 invalid_request, not 500."""
    t = ctx.main()
    with measured(r, t.url):
        answers = [
            call(t.client, "GET", "/api/assets", params={"cursor": "9999999999999999999"}),
            call(t.client, "POST", "/api/keys", json={"name": "   "}),
        ]
    for a in answers:
        r.tally(a, a.is_(422, "invalid_request"))
    t.audit.record(r)


MAIN_SERVER_CLASSES = {
    "rebinding",
    "cross-site",
    "decode-bomb",
    "symlink-escape",
    "slow-drip",
    "gzip-bomb",
    "url-changed",
    "small",
}
CLASSES: dict[str, Callable[[Context, ClassResult], None]] = {
    "rebinding": run_rebinding,
    "cross-site": run_cross_site,
    "decode-bomb": run_decode_bomb,
    "symlink-escape": run_symlink_escape,
    "ssrf": run_ssrf,
    "slow-drip": run_slow_drip,
    "gzip-bomb": run_gzip_bomb,
    "url-changed": run_url_changed,
    "crash-leftovers": run_crash_leftovers,
    "full-disk": run_full_disk,
    "small": run_small,
}


# --- running and reporting ------------------------------------------------------------------------


def run_class(ctx: Context, name: str) -> ClassResult:
    result = ClassResult(name)
    tripped = ctx.fence.tripped
    started = time.monotonic()
    try:
        CLASSES[name](ctx, result)
    except Exception as exc:  # an unfinished piece of the server, or a broken class: reported, not raised
        result.failures.append(f"error: {type(exc).__name__}: {exc}")
    result.seconds = round(time.monotonic() - started, 1)
    result.fence_tripped = ctx.fence.tripped - tripped
    if result.fence_tripped and not any("fence" in f for f in result.failures):
        result.failures.append(f"fence tripped {result.fence_tripped} time(s): {ctx.fence.blocked}")
    if (
        name != "crash-leftovers"
        and result.rss_end_mb is not None
        and result.rss_start_mb is not None
        and result.rss_end_mb - result.rss_start_mb > 256
    ):  # (crash-leftovers' end is the kill)
        result.notes.append(
            f"RSS did not come back down: {result.rss_end_mb - result.rss_start_mb:+.0f} MiB at the "
            "end of the class, with every request answered"
        )
    if result.health_failures and name != "slow-drip":
        result.failures.append(f"/healthz failed {result.health_failures} of {result.health_probes} probes")
    if result.unexpected:
        result.failures.append(f"{result.unexpected} answer(s) not as expected: {result.statuses}")
    return result


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(results: list[ClassResult], ctx: Context) -> None:
    print(
        f"visualsearch abuse benchmark: {os.cpu_count()} cores, main server model "
        f"{ctx.model_id or '(not started)'}, all traffic on 127.0.0.1"
    )
    print(
        "RSS in MiB: VmRSS at the start and end of the class, peak = VmHWM during it (reset per class), of this "
        "process:\n  the in-process servers + the load generator, whose threads are small; crash-leftovers: the "
        "server subprocess"
    )
    print(
        "clean = answered with the expected status and code (symlink-escape, crash-leftovers, full-disk: checks "
        "passed)\n"
    )
    header = (
        f"{'class':16} {'attempts':>8} {'clean':>6} {'RSS start':>9} {'peak RSS':>8} {'RSS end':>7} "
        f"{'healthz max ms':>14} {'p50 ms':>7} {'lost':>5} {'orphans':>7} {'secs':>6}  result"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.skipped:
            print(
                f"{r.name:16} {'':>8} {'':>6} {'':>9} {'':>8} {'':>7} {'':>14} {'':>7} {'':>5} {'':>7} "
                f"{r.seconds:>6.1f}  skipped ({r.skipped})"
            )
            continue
        print(
            f"{r.name:16} {r.attempts:>8} {r.clean:>6} {_fmt(r.rss_start_mb):>9} {_fmt(r.peak_rss_mb):>8} "
            f"{_fmt(r.rss_end_mb):>7} {_fmt(r.health_max_ms, 1):>14} {_fmt(r.health_p50_ms, 1):>7} {r.lost:>5} "
            f"{r.orphans:>7} {r.seconds:>6.1f}  {'PASS' if r.ok else 'FAIL'}"
        )
    print("-" * len(header))
    print(
        f"data lost: {sum(r.lost for r in results)}, orphans: {sum(r.orphans for r in results)}, "
        f"fence tripped: {sum(r.fence_tripped for r in results)}"
    )
    print()
    for r in results:
        if r.skipped:
            continue
        print(f"{r.name}: " + ", ".join(f"{k} x{v}" for k, v in r.statuses.items()))
        for note in r.notes:
            print(f"    {note}")
        for failure in r.failures:
            print(f"    FAILED: {failure}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="Print the results as JSON instead of a table.")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(CLASSES),
        metavar="CLASS",
        help=f"Run only these classes ({', '.join(CLASSES)}).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder (libraries, server log).")
    args = parser.parse_args()

    fence = Fence()
    fence.install()
    for name in (
        "VISUALSEARCH_LIBRARY",
        "VISUALSEARCH_MODEL",
        "VISUALSEARCH_DATABASE_URL",
        "VISUALSEARCH_VECTOR_BACKEND",
        "VISUALSEARCH_FOLDER_ROOTS",
        "VISUALSEARCH_ALLOWED_HOSTS",
        "VISUALSEARCH_ALLOW_PRIVATE_URLS",
    ):
        os.environ.pop(name, None)
    workdir = Path(tempfile.mkdtemp(prefix="visualsearch-abuse-"))
    cache_dir = workdir / "cache"
    cache_dir.mkdir()
    os.environ["VISUALSEARCH_CACHE_DIR"] = str(cache_dir)
    ctx = Context(workdir, cache_dir, fence)
    selected = args.only or list(CLASSES)
    results: list[ClassResult] = []
    try:
        # Servers start before the classes, so that a class's time and memory are the attack's only.
        if set(selected) & MAIN_SERVER_CLASSES:
            ctx.main()
        if "ssrf" in selected:
            ctx.ssrf()
        for name in selected:
            print(f"[{name} ...]", file=sys.stderr, flush=True)
            results.append(run_class(ctx, name))
            print(
                f"[{name}: {'PASS' if results[-1].ok else 'FAIL'} in {results[-1].seconds:.1f} s]",
                file=sys.stderr,
                flush=True,
            )
    finally:
        ctx.close()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(
            json.dumps(
                {
                    "model": ctx.model_id,
                    "cores": os.cpu_count(),
                    "classes": [asdict(r) | {"ok": r.ok} for r in results],
                    "data_lost": sum(r.lost for r in results),
                    "orphans": sum(r.orphans for r in results),
                    "fence_tripped": sum(r.fence_tripped for r in results),
                    "ok": all(r.ok for r in results),
                },
                indent=2,
            )
        )
    else:
        print_table(results, ctx)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
