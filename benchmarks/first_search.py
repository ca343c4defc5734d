"""How long a new user waits: first index, first CLI search, server start-up, first searches.

Runs the installed ``visualsearch`` command as a user would (subprocesses, a real server on
loopback), on a library built from a folder of photos (default: the sample photos that ship with visualsearch).

    .venv/bin/python benchmarks/first_search.py [--photos DIR] [--repeat 3]

"cold" is the first run on a machine (a fresh model cache: the text encoder is exported to
ONNX first); "warm" is any run after that. Figures are wall-clock seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the test suite's helpers: tests/support
from tests.support.live import free_port, wait_ready  # noqa: E402

EXE = [sys.executable, "-m", "visualsearch"]


def run(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run([*EXE, *args], capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"visualsearch {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - started


def request(url: str, body: bytes | None = None, content_type: str = "application/json") -> float:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if body else {})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        r.read()
    return time.perf_counter() - started


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "benchmark-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def grid_seconds(base: str) -> tuple[float, int]:
    """Seconds to list the first page of the library and fetch every thumbnail on it, in order."""
    started = time.perf_counter()
    with urllib.request.urlopen(f"{base}/api/assets?limit=200", timeout=120) as r:
        items = json.loads(r.read())["items"]
    for item in items:
        with urllib.request.urlopen(base + item["thumbnail_url"], timeout=120) as r:
            r.read()
    return time.perf_counter() - started, len(items)


def serve_figures(library: Path, photo: Path, env: dict[str, str], searches: bool = True) -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*EXE, "serve", "--library", str(library), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(base, 300, proc)
        ready = time.perf_counter() - started
        grid_cold, cards = grid_seconds(base)
        grid_warm, _ = grid_seconds(base)
        if not searches:
            return {"ready": ready, "grid cold": grid_cold, "grid warm": grid_warm, "cards": cards}
        text = [
            request(f"{base}/api/search", json.dumps({"text": q}).encode())
            for q in ("a cat", "a cup of coffee", "flowers in a garden")
        ]
        body, ctype = multipart(photo.name, photo.read_bytes())
        image = [request(f"{base}/api/search/image", body, ctype) for _ in range(3)]
        return {
            "ready": ready,
            "grid cold": grid_cold,
            "grid warm": grid_warm,
            "cards": cards,
            "text first": text[0],
            "text next": statistics.median(text[1:]),
            "image first": image[0],
            "image next": statistics.median(image[1:]),
        }
    finally:
        proc.terminate()
        proc.wait(30)


def on_view_seconds(library: Path) -> dict[str, float]:
    """What a grid waited for when previews were made on first view: making all of them, in order.

    Measured in-process (a server would start filling them in the background at once, which
    hides the cost on a small library but not on one of thousands of wallpapers).
    """
    sys.path.insert(0, str(REPO / "src"))
    from visualsearch.catalog import AssetFilter
    from visualsearch.config import Settings
    from visualsearch.services import AssetService, Library

    lib = Library(Settings.from_env(library))
    try:
        assets = lib.catalog.list_assets(AssetFilter(), limit=200)
        service = AssetService(lib)
        started = time.perf_counter()
        for asset in assets:
            service.thumbnail(asset)
        return {"grid cold": time.perf_counter() - started, "cards": len(assets)}
    finally:
        lib.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=REPO / "src" / "visualsearch" / "demo" / "photos")
    parser.add_argument("--repeat", type=int, default=3, help="warm CLI searches to time")
    args = parser.parse_args()
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not photos:
        raise SystemExit(f"no photos in {args.photos}")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, VISUALSEARCH_CACHE_DIR=str(Path(tmp) / "cache"))
        env.pop("VISUALSEARCH_LIBRARY", None)
        library = Path(tmp) / "lib"
        index_cold = run(["index", str(args.photos), "--library", str(library)], env)
        search_first = run(["search", "a cat", "--library", str(library)], env)
        warm = [
            run(["search", q, "--library", str(library)], env)
            for q in ("a cup of coffee", "a rocket", "flowers", "a storm", "a butterfly")[: args.repeat]
        ]
        server = serve_figures(library, photos[0], env)
        # The same library indexed without previews: the grid makes them on first view.
        off_env = dict(env, VISUALSEARCH_THUMBNAILS_AT_INDEX="false")
        off_library = Path(tmp) / "lib-no-previews"
        run(["index", str(args.photos), "--library", str(off_library)], off_env)
        off = on_view_seconds(off_library)
    print(f"{len(photos)} photos from {args.photos}, {os.cpu_count()} cores")
    print(f"CLI  index, cold (exports the text model) : {index_cold:6.2f} s")
    print(f"CLI  first search after index            : {search_first:6.2f} s")
    print(f"CLI  search, warm (median of {len(warm)})          : {statistics.median(warm):6.2f} s")
    print(f"serve: start to /readyz 200              : {server['ready']:6.2f} s")
    print(
        f"serve: first text search / next          : {server['text first'] * 1000:6.0f} ms / "
        f"{server['text next'] * 1000:.0f} ms"
    )
    print(
        f"serve: first search by image / next      : {server['image first'] * 1000:6.0f} ms / "
        f"{server['image next'] * 1000:.0f} ms"
    )
    print(
        f"grid of {server['cards']:.0f} cards, first load / again      : {server['grid cold']:6.2f} s / "
        f"{server['grid warm']:.2f} s (previews made while indexing)"
    )
    print(
        f"previews of {off['cards']:.0f} cards made on first view     : {off['grid cold']:6.2f} s "
        "(VISUALSEARCH_THUMBNAILS_AT_INDEX=false, or before this version)"
    )


if __name__ == "__main__":
    main()
