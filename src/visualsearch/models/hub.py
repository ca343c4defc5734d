"""Download a curated model's files from the Hugging Face Hub into the model store.

Why not ``snapshot_download``: in huggingface_hub 2.4 a download writes to a temporary
file named per process and deletes it on exit, so a download that is killed (or a
laptop that sleeps) starts again from byte 0, and its bytes arrive in 10 MiB steps, too
coarse for a progress bar on a slow line. Here huggingface_hub still does what it is
good at (the Hub API, the endpoint, tokens, errors, the HTTP session), and the bytes go
to ``<store>/<name>/.partial/<file>.part``, flushed as they arrive, so the next run asks
for ``Range: bytes=<have>-`` and carries on. Every file is checked against the hash the
Hub lists for it (sha256 for large "LFS" files, the git blob id for the others) before
it is moved into place, and the model counts as installed only when ``manifest.json``,
written last, says so. Loading then reads the local folder and never touches the
network, so a model that is installed works offline.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import VisualSearchError
from .zoo import ModelCard

#: Bytes read per network read and written (and flushed) per step: what a killed download can lose at most.
CHUNK = 1 << 20
#: Attempts per file when the connection drops; the count starts again whenever bytes arrive.
RETRIES = 5
MANIFEST = "manifest.json"
PARTIAL = ".partial"

#: progress(bytes done, bytes in total, file being fetched).
Progress = Callable[[int, int, str], None]

#: Files of an XLM-RoBERTa-style text tower that OpenCLIP's HF text encoder reads (config and tokenizer).
TEXT_TOWER_FILES = (
    ("config.json",),
    ("tokenizer.json",),
    ("tokenizer_config.json",),
    ("sentencepiece.bpe.model",),
    ("special_tokens_map.json",),
)


class ModelDownloadError(VisualSearchError):
    """A model could not be downloaded; the message says why and what to do."""


@dataclass(frozen=True)
class RemoteFile:
    repo: str
    revision: str
    path: str
    #: Where it goes in the model's folder.
    dest: str
    size: int
    sha256: str | None
    git_oid: str | None


@dataclass(frozen=True)
class DownloadPlan:
    name: str
    repo: str
    revision: str
    files: tuple[RemoteFile, ...]

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)


def store_dir(cache_dir: Path) -> Path:
    return cache_dir / "models"


def model_dir(cache_dir: Path, name: str) -> Path:
    return store_dir(cache_dir) / name


def installed_manifest(cache_dir: Path, name: str) -> dict[str, Any] | None:
    """The manifest of a completely downloaded model, or None."""
    path = model_dir(cache_dir, name) / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not manifest.get("complete"):
        return None
    folder = path.parent
    if not all((folder / f["dest"]).is_file() for f in manifest.get("files", [])):
        return None
    return manifest


def partial_bytes(cache_dir: Path, name: str) -> int:
    """Bytes of an unfinished download that the next ``models use`` will resume from."""
    folder = model_dir(cache_dir, name)
    if installed_manifest(cache_dir, name) is not None or not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def disk_bytes(cache_dir: Path, name: str) -> int:
    folder = model_dir(cache_dir, name)
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def remove_model(cache_dir: Path, name: str) -> bool:
    folder = model_dir(cache_dir, name)
    if not folder.exists():
        return False
    with model_lock(cache_dir, name, "remove it"):
        shutil.rmtree(folder)
    return True


def _hub() -> Any:
    # Before huggingface_hub is imported: it reads these once. Telemetry would add a request per day.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import huggingface_hub

    return huggingface_hub


def _endpoint() -> str | None:
    # Read at call time, not at import time as huggingface_hub does, so a test (or a server
    # whose environment changed) points at the endpoint it means.
    return os.environ.get("HF_ENDPOINT") or None


def _unreachable(exc: Exception, repo: str) -> ModelDownloadError:
    hub = _hub()
    endpoint = _endpoint() or hub.constants.ENDPOINT
    if isinstance(exc, hub.errors.OfflineModeIsEnabled):
        return ModelDownloadError(
            f"cannot download {repo}: HF_HUB_OFFLINE is set. Unset it on a machine with internet, "
            "or copy the model's folder from one (see `visualsearch models list` for where models live)."
        )
    if isinstance(exc, hub.errors.GatedRepoError):
        return ModelDownloadError(f"{repo} needs you to accept its licence on the Hub and set HF_TOKEN: {exc}")
    if isinstance(exc, hub.errors.RepositoryNotFoundError):
        return ModelDownloadError(f"{repo} was not found at {endpoint}; check HF_ENDPOINT")
    return ModelDownloadError(
        f"cannot reach the model hub at {endpoint} for {repo} ({type(exc).__name__}: {exc}). "
        "Check the internet connection (or HTTPS_PROXY / HF_ENDPOINT) and run the same command again: "
        "what was downloaded so far is kept and the download resumes."
    )


def _pick(tree: dict[str, Any], groups: tuple[tuple[str, ...], ...], required: bool, repo: str) -> list[Any]:
    chosen = []
    for group in groups:
        found = next((tree[name] for name in group if name in tree), None)
        if found is not None:
            chosen.append(found)
        elif required:
            raise ModelDownloadError(f"{repo} has none of {', '.join(group)}: it does not look like this model")
    return chosen


def _safe_dest(path: str) -> str:
    """A file name from the Hub, refused unless it is a plain relative path inside the model's folder."""
    parts = PurePosixPath(path).parts
    if not parts or path.startswith(("/", "\\")) or any(p in ("..", "") or "\\" in p or ":" in p for p in parts):
        raise ModelDownloadError(f"the Hub listed a file with an unsafe name: {path!r}")
    return path


def _remote(repo: str, revision: str, entry: Any, dest_prefix: str = "") -> RemoteFile:
    lfs = getattr(entry, "lfs", None)
    sha256 = (lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)) if lfs else None
    return RemoteFile(
        repo,
        revision,
        entry.path,
        dest_prefix + entry.path,
        int(entry.size or 0),
        sha256,
        getattr(entry, "blob_id", None),
    )


def _listing(api: Any, repo: str, revision: str) -> tuple[str, dict[str, Any]]:
    hub = _hub()
    try:
        sha = api.model_info(repo, revision=revision).sha or revision
        entries = api.list_repo_tree(repo, revision=sha, recursive=True)
        return sha, {e.path: e for e in entries if isinstance(e, hub.hf_api.RepoFile)}
    except ModelDownloadError:
        raise
    except Exception as exc:  # every network and Hub failure becomes one clear message
        raise _unreachable(exc, repo) from exc


def plan_download(card: ModelCard, revision: str = "main") -> DownloadPlan:
    """Ask the Hub which files (sizes, hashes) make up ``card`` at ``revision``."""
    if card.repo is None:
        raise ModelDownloadError(f"{card.name} comes with visualsearch; there is nothing to download")
    hub = _hub()
    api = hub.HfApi(endpoint=_endpoint())
    sha, tree = _listing(api, card.repo, revision)
    entries = _pick(tree, card.files, True, card.repo) + _pick(tree, card.optional, False, card.repo)
    files = [_remote(card.repo, sha, e) for e in entries]
    text_repo = card.extra.get("text_repo")
    if text_repo:
        text_sha, text_tree = _listing(api, text_repo, "main")
        # Beside the weights: OpenCLIP reads a local folder's tokenizer from the folder itself.
        files += [_remote(text_repo, text_sha, e) for e in _pick(text_tree, TEXT_TOWER_FILES, False, text_repo)]
    return DownloadPlan(card.name, card.repo, sha, tuple(files))


def _digest(path: Path, algorithm: str, size: int) -> str:
    h = hashlib.new(algorithm)
    if algorithm == "sha1":  # a git blob id hashes a header, then the bytes
        h.update(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _verified(path: Path, f: RemoteFile) -> bool:
    if path.stat().st_size != f.size:
        return False
    if f.sha256:
        return _digest(path, "sha256", f.size) == f.sha256
    if f.git_oid:
        return _digest(path, "sha1", f.size) == f.git_oid
    return True


def _fetch(f: RemoteFile, part: Path, advance: Callable[[int], None]) -> None:
    hub = _hub()
    url = hub.hf_hub_url(f.repo, f.path, revision=f.revision, endpoint=_endpoint())
    attempts = RETRIES
    while True:
        have = part.stat().st_size if part.exists() else 0
        if have > f.size:  # not ours, or the file changed: start it again
            advance(-have)
            part.unlink()
            have = 0
        if have == f.size:
            return
        headers = hub.utils.build_hf_headers()
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            with hub.get_session().stream("GET", url, headers=headers, follow_redirects=True, timeout=30) as response:
                hub.utils.hf_raise_for_status(response)
                with open(part, "ab") as out:
                    if have and response.status_code == 200:  # the server ignored the Range: from the start
                        out.truncate(0)
                        advance(-have)
                    written = out.tell()
                    for chunk in response.iter_bytes(CHUNK):
                        written += len(chunk)
                        if written > f.size:  # more than the Hub listed: never let a server fill the disk
                            raise ModelDownloadError(
                                f"{f.repo}/{f.path} is larger than the {f.size:,} bytes the Hub lists; stopped"
                            )
                        out.write(chunk)
                        out.flush()
                        advance(len(chunk))
                        attempts = RETRIES
            return
        except ModelDownloadError:
            raise
        except OSError as exc:
            if type(exc).__module__.startswith(("httpx", "httpcore")):
                raise _unreachable(exc, f.repo) from exc
            raise ModelDownloadError(  # the disk, not the network: full, read-only, or the folder went away
                f"cannot write {part}: {exc.strerror or exc}; check the free space and permissions of {part.parent}"
            ) from exc
        except Exception as exc:
            attempts -= 1
            transient = type(exc).__module__.startswith(("httpx", "httpcore")) and not isinstance(
                exc, hub.errors.HfHubHTTPError
            )
            if not transient or attempts <= 0:
                raise _unreachable(exc, f.repo) from exc
            time.sleep(1)


@contextmanager
def model_lock(cache_dir: Path, name: str, what: str) -> Iterator[None]:
    """Hold ``<store>/<name>.lock``: one download or removal of a model at a time, across processes."""
    store_dir(cache_dir).mkdir(parents=True, exist_ok=True)
    with open(store_dir(cache_dir) / f"{name}.lock", "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ModelDownloadError(
                f"{name} is being downloaded by another process (visualsearch models use, or a server); "
                f"wait for it to finish before you {what}"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def download(plan: DownloadPlan, cache_dir: Path, progress: Progress | None = None) -> Path:
    """Fetch every file of ``plan`` (resuming partial ones), verify it, and mark the model installed."""
    with model_lock(cache_dir, plan.name, "download it again"):
        try:
            return _download(plan, cache_dir, progress)
        except OSError as exc:  # the disk, not the network (network errors are ModelDownloadError by now)
            raise ModelDownloadError(
                f"cannot write {plan.name}'s files in {model_dir(cache_dir, plan.name)}: {exc.strerror or exc}; "
                "check the free space and permissions there"
            ) from exc


def _download(plan: DownloadPlan, cache_dir: Path, progress: Progress | None) -> Path:
    folder = model_dir(cache_dir, plan.name)
    partial = folder / PARTIAL
    partial.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    previous = installed_manifest(cache_dir, plan.name)
    if previous is not None and previous.get("revision") != plan.revision:
        manifest_path.unlink()  # a new revision: the old files are replaced as the new ones arrive
    have = sum(
        (partial / (f.dest + ".part")).stat().st_size for f in plan.files if (partial / (f.dest + ".part")).exists()
    )
    have += sum(
        f.size for f in plan.files if (folder / f.dest).is_file() and (folder / f.dest).stat().st_size == f.size
    )
    needed = plan.total - have
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise ModelDownloadError(
            f"{plan.name} needs {needed / 1e9:.1f} GB more disk space in {folder.parent} and "
            f"{free / 1e9:.1f} GB are free; free some space (or set VISUALSEARCH_CACHE_DIR to a larger disk)"
        )
    done = 0
    total = plan.total

    def advance(n: int, name: str = "") -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total, name)

    def partial_advance(name: str) -> Callable[[int], None]:
        return lambda n: advance(n, name)

    for f in plan.files:
        final = folder / f.dest
        if final.is_file() and _verified(final, f):
            advance(f.size, f.dest)
            continue
        part = partial / (f.dest + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        advance(part.stat().st_size if part.exists() else 0, f.dest)
        _fetch(f, part, partial_advance(f.dest))
        if not _verified(part, f):
            part.unlink()
            raise ModelDownloadError(
                f"{f.repo}/{f.path} arrived damaged (its hash does not match the Hub's); it was deleted, run again"
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, final)
    shutil.rmtree(partial, ignore_errors=True)
    manifest = {
        "name": plan.name,
        "repo": plan.repo,
        "revision": plan.revision,
        "complete": True,
        "files": [asdict(f) for f in plan.files],
    }
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, manifest_path)
    return folder
