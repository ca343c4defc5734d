"""A small fake Hugging Face Hub on 127.0.0.1, serving model repos from a folder.

``ROOT/<org>/<name>/<files>`` is served as repo ``<org>/<name>`` at revision ``main`` (and
its commit sha, a hash of the paths and contents, so an edit shows up as a new commit).
It answers what huggingface_hub 2.4 asks for (checked against its source and a real
client, see docs/research/issue-17-models-and-fake-hub.md):

- ``GET /api/models/<repo>[/revision/<rev>]``: ``{"id", "sha", "siblings"}``
- ``GET /api/models/<repo>/tree/<rev>[/<path>]``: files with size, git oid and ``lfs.oid`` (sha256)
- ``HEAD|GET /<repo>/resolve/<rev>/<path>``: ``X-Repo-Commit``, ``ETag``, the bytes; ``Range: bytes=N-`` gets a 206
- errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) like the real Hub.

For interruption tests it can send bodies slowly (``rate`` bytes/s), and it logs every
request so a test can check that a resumed download asked for a ``Range`` and that an
offline run asked for nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

CHUNK = 64 * 1024
#: Files from this size on are "LFS" files: their ETag and tree entry carry the sha256, as on the Hub.
LFS_MIN = 10_000


@dataclass
class RepoFile:
    path: Path
    size: int
    git_oid: str
    sha256: str

    @property
    def lfs(self) -> bool:
        return self.size >= LFS_MIN

    @property
    def etag(self) -> str:
        return f'"{self.sha256 if self.lfs else self.git_oid}"'


@dataclass
class Repo:
    id: str
    files: dict[str, RepoFile]
    sha: str


def scan(repo_id: str, folder: Path) -> Repo:
    files: dict[str, RepoFile] = {}
    commit = hashlib.sha1(repo_id.encode())
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        data = p.read_bytes()
        rel = p.relative_to(folder).as_posix()
        git_oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        sha256 = hashlib.sha256(data).hexdigest()
        files[rel] = RepoFile(p, len(data), git_oid, sha256)
        commit.update(f"{rel}\0{sha256}\0".encode())
    return Repo(repo_id, files, commit.hexdigest())


class _QuietServer(ThreadingHTTPServer):
    """Clients the tests kill mid-download reset their connections: expected, not worth a traceback."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class FakeHub:
    root: Path
    #: Body bytes per second for file downloads (0: as fast as possible).
    rate: float = 0.0
    log: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def repo(self, repo_id: str) -> Repo | None:
        folder = self.root / repo_id
        if repo_id.count("/") != 1 or ".." in repo_id or not folder.is_dir():
            return None
        return scan(repo_id, folder)  # rescanned per request: edits show up at once

    def requests(self, contains: str = "") -> list[str]:
        return [line for line in list(self.log) if contains in line]

    def start(self) -> FakeHub:
        self.server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            hub.log.append(f"{self.command} {self.path} range={self.headers.get('Range')}")

        def _send(self, code: int, body: bytes = b"", headers: dict[str, Any] | None = None) -> None:
            self.send_response(code)
            for key, value in (headers or {}).items():
                self.send_header(key, str(value))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, code: int, kind: str, message: str, extra: dict[str, Any] | None = None) -> None:
            headers = {"X-Error-Code": kind, "X-Error-Message": message, **(extra or {})}
            self._send(code, json.dumps({"error": message}).encode(), headers)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            path, query = unquote(url.path), parse_qs(url.query)
            if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
                return self._info(m.group(1), m.group(2) or "main")
            if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path):
                return self._tree(m.group(1), m.group(2), m.group(3) or "", query)
            if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                return self._resolve(m.group(1), m.group(2), m.group(3))
            self._error(404, "NotFound", f"no route for {path}")

        def _repo(self, repo_id: str, rev: str) -> Repo | None:
            repo = hub.repo(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
            elif rev not in ("main", repo.sha):
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return None
            return repo

        def _info(self, repo_id: str, rev: str) -> None:
            if repo := self._repo(repo_id, rev):
                siblings = [{"rfilename": rel} for rel in repo.files]
                self._send(
                    200,
                    json.dumps(
                        {
                            "id": repo.id,
                            "modelId": repo.id,
                            "sha": repo.sha,
                            "siblings": siblings,
                            "private": False,
                            "tags": [],
                        }
                    ).encode(),
                )

        def _tree(self, repo_id: str, rev: str, sub: str, query: dict[str, list[str]]) -> None:
            repo = self._repo(repo_id, rev)
            if repo is None:
                return
            recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
            prefix = sub.strip("/") + "/" if sub.strip("/") else ""
            entries: list[dict[str, Any]] = []
            dirs: set[str] = set()
            for rel, f in repo.files.items():
                if not rel.startswith(prefix):
                    continue
                parts = rel[len(prefix) :].split("/")
                for i in range(1, len(parts)):
                    folder = prefix + "/".join(parts[:i])
                    if (recursive or i == 1) and folder not in dirs:
                        dirs.add(folder)
                        entries.append(
                            {
                                "type": "directory",
                                "path": folder,
                                "size": 0,
                                "oid": hashlib.sha1(folder.encode()).hexdigest(),
                            }
                        )
                if len(parts) == 1 or recursive:
                    entry: dict[str, Any] = {"type": "file", "path": rel, "size": f.size, "oid": f.git_oid}
                    if f.lfs:
                        entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
                    entries.append(entry)
            if prefix and not entries:
                return self._error(404, "EntryNotFound", f"{sub} does not exist")
            self._send(200, json.dumps(entries).encode())

        def _resolve(self, repo_id: str, rev: str, rel: str) -> None:
            repo = self._repo(repo_id, rev)
            if repo is None:
                return
            commit = {"X-Repo-Commit": repo.sha}
            if rel not in repo.files:
                return self._error(404, "EntryNotFound", f"{rel} does not exist", commit)
            f = repo.files[rel]
            headers: dict[str, Any] = {
                **commit,
                "ETag": f.etag,
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            start, code = 0, 200
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
            if m and self.command == "GET":
                start = int(m.group(1))
                if start >= f.size:
                    return self._send(416, b"", {**headers, "Content-Range": f"bytes */{f.size}"})
                code = 206
                headers["Content-Range"] = f"bytes {start}-{f.size - 1}/{f.size}"
            self.send_response(code)
            for key, value in {**headers, "Content-Length": f.size - start}.items():
                self.send_header(key, str(value))
            self.end_headers()
            if self.command == "HEAD":
                return
            try:
                with open(f.path, "rb") as fh:
                    fh.seek(start)
                    while chunk := fh.read(CHUNK):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        if hub.rate:
                            time.sleep(len(chunk) / hub.rate)
            except (BrokenPipeError, ConnectionResetError):  # the client went away (killed)
                self.close_connection = True

    return Handler
