#!/usr/bin/env python
"""Load test of the REST API: search latency p50/p95 and requests/s with N concurrent clients.

Builds (once, cached in --workdir) a library of a few thousand images: the 1,239
photos of ../shared/eval plus a mirrored and a cropped copy of each (3,717
images), indexed with the default model. Then starts `visualsearch serve` as
users do (a separate process on 127.0.0.1) and runs, for each concurrency level,
a fixed number of rounds of three query kinds: text (COCO captions), similar to
an asset (random asset ids) and search by an uploaded image (multipart).

Usage: python benchmarks/api_load.py [--eval ../shared/eval] [--clients 1,4,8] [--requests 120]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]


def build_corpus(eval_dir: Path, folder: Path) -> int:
    sources = sorted((eval_dir / "coco-239" / "images").glob("*.jpg")) + sorted(
        (eval_dir / "imagenet-sample" / "images").glob("*")
    )
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for src in sources:
        stem = src.stem
        targets = {
            "orig": folder / f"{stem}.jpg",
            "flip": folder / "variants" / f"{stem}-flip.jpg",
            "crop": folder / "variants" / f"{stem}-crop.jpg",
        }
        if all(t.exists() for t in targets.values()):
            count += 3
            continue
        targets["flip"].parent.mkdir(parents=True, exist_ok=True)
        with Image.open(src) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.save(targets["orig"], quality=90)
            ImageOps.mirror(im).save(targets["flip"], quality=90)
            w, h = im.size
            im.crop((w // 12, h // 12, w - w // 12, h - h // 12)).save(targets["crop"], quality=90)
        count += 3
    return count


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "visualsearch-api-load"
    )
    parser.add_argument("--clients", default="1,4,8", help="Concurrency levels, comma-separated.")
    parser.add_argument("--requests", type=int, default=120, help="Requests per query kind and level.")
    parser.add_argument("--kinds", default="text,asset,image", help="Query kinds to run, comma-separated.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    folder, library = args.workdir / "images", args.workdir / "library"
    total = build_corpus(args.eval, folder)
    print(f"corpus: {total} images in {folder}")
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "visualsearch", "index", str(folder), "--library", str(library), "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"index (incremental): {time.perf_counter() - t0:.1f} s")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, VISUALSEARCH_RATE_LIMIT="0")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "visualsearch",
            "serve",
            "--library",
            str(library),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("server did not become ready")
            time.sleep(0.2)
        stats = httpx.get(f"{url}/api/stats").json()
        print(
            f"server: {stats['indexed']} assets, model {stats['model_id']}, "
            f"indexes {[(i['space'], i['type'], i['vectors']) for i in stats['indexes']]}"
        )
        run_load(url, args, stats)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


def run_load(url: str, args, stats: dict) -> None:
    rng = random.Random(args.seed)
    captions = [
        c
        for line in (args.eval / "coco-239" / "captions.jsonl").read_text().splitlines()
        if line.strip()
        for c in json.loads(line)["captions"]
    ]
    with httpx.Client(base_url=url, timeout=60) as api:
        ids, cursor = [], None
        while True:
            page = api.get("/api/assets", params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
            ids += [a["id"] for a in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
    photos = sorted((args.eval / "coco-239" / "images").glob("*.jpg"))
    uploads = [(p.name, p.read_bytes()) for p in rng.sample(photos, 20)]

    def make_request(kind: str, client: httpx.Client, r: random.Random) -> httpx.Response:
        if kind == "text":
            return client.post("/api/search", json={"text": r.choice(captions), "limit": 20})
        if kind == "asset":
            return client.post("/api/search", json={"asset_id": r.choice(ids), "limit": 20})
        name, data = r.choice(uploads)
        return client.post("/api/search/image", files={"file": (name, data, "image/jpeg")}, data={"limit": "20"})

    print(
        f"\n{args.requests} requests per kind and level; limit=20; {os.cpu_count()} cores shared by server and clients"
    )
    print(f"{'kind':6} {'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>7} {'errors':>6}")
    for kind in args.kinds.split(","):
        for clients in [int(c) for c in args.clients.split(",")]:
            latencies: list[float] = []
            errors = 0
            lock = threading.Lock()
            per_client = max(1, args.requests // clients)

            def worker(n: int) -> None:
                nonlocal errors
                r = random.Random(args.seed * 1000 + n)
                with httpx.Client(base_url=url, timeout=120) as client:
                    make_request(kind, client, r)  # warm the connection
                    for _ in range(per_client):
                        t = time.perf_counter()
                        resp = make_request(kind, client, r)
                        elapsed = (time.perf_counter() - t) * 1000
                        with lock:
                            latencies.append(elapsed)
                            errors += resp.status_code != 200

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
            print(
                f"{kind:6} {clients:>7} {statistics.median(latencies):>8.1f} {percentile(latencies, 95):>8.1f} "
                f"{len(latencies) / wall:>7.1f} {errors:>6}",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
