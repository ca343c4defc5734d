"""Security review of decoding: decompression bombs under the pixel cap, what read_file opens,
decode workers that outlive a killed parent.

Everything here stays on local files and child processes of the test. Memory and time are
measured in child processes (peak RSS from ``getrusage`` minus the peak right after imports),
under an address-space limit so that a regression fails fast instead of eating the machine.
Every wait is bounded.
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from visualsearch.config import MAX_DECODED_BYTES, MAX_IMAGE_PIXELS
from visualsearch.errors import DecodeError, ImageTooLarge
from visualsearch.ingest.decode import decode_bytes, decode_file, read_file
from visualsearch.ingest.pipeline import prepare
from visualsearch.ingest.scan import FoundFile

MB = 2**20


# -- test files --------------------------------------------------------------------------
def write_png(path: Path, width: int, height: int, *, bit_depth: int, color_type: int, rows) -> Path:
    """A valid PNG streamed row by row (``rows(y)`` gives filter byte + row), never in memory whole."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)))
        z = zlib.compressobj(9)
        for y in range(height):
            out = z.compress(rows(y))
            if out:
                f.write(chunk(b"IDAT", out))
        f.write(chunk(b"IDAT", z.flush()))
        f.write(chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="session")
def bomb16(tmp_path_factory) -> Path:
    """13000 x 13000 16-bit greyscale (169 MP, under the pixel cap) in well under 1 MB."""
    side = 13_000
    assert side * side < MAX_IMAGE_PIXELS
    flat = b"\x00" + bytes(2 * side)
    ramp = b"\x00" + np.linspace(0, 65535, side).astype(">u2").tobytes()
    path = write_png(
        tmp_path_factory.mktemp("bombs") / "grey16.png",
        side,
        side,
        bit_depth=16,
        color_type=0,
        rows=lambda y: ramp if y % 1000 < 3 else flat,
    )
    assert path.stat().st_size < 1 * MB
    return path


@pytest.fixture(scope="session")
def rgba_12k(tmp_path_factory) -> Path:
    """12000 x 12000 RGBA: 144 MP (under the pixel cap), 576 MB once decoded (over the decoded cap)."""
    side = 12_000
    row = b"\x00" + bytes([200, 100, 50, 128]) * side
    return write_png(
        tmp_path_factory.mktemp("bombs") / "rgba.png", side, side, bit_depth=8, color_type=6, rows=lambda y: row
    )


MEASURE = r"""
import json, resource, sys, time
from pathlib import Path
from visualsearch.ingest.decode import decode_bytes, read_file

def vm_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0

path, kwargs = Path(sys.argv[1]), json.loads(sys.argv[2])
data = read_file(path)
# A regression must fail here with MemoryError, not take gigabytes of a shared machine.
limit = vm_bytes() + 2 * 1024**3
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = time.perf_counter()
result = {}
try:
    decoded = decode_bytes(data, **kwargs)
    decoded.pixel_sha256, decoded.phash
    result.update(size=[decoded.width, decoded.height], working=list(decoded.image.size), mode=decoded.image.mode,
                  pixel=decoded.image.getpixel((0, 0)))
except Exception as exc:
    result.update(error=type(exc).__name__, message=str(exc))
result["seconds"] = time.perf_counter() - t
result["extra_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base) / 2**20
print(json.dumps(result))
"""


def measure(path: Path, **kwargs) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), json.dumps(kwargs)], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- 1. decompression bombs under the pixel cap ---------------------------------------------
@pytest.mark.slow  # big image, ~2.5 s
def test_16_bit_bomb_under_the_pixel_cap_decodes_in_bounded_memory_and_time(bomb16):
    """Was 5.7 GB and 16 s (float64 temporaries at full size); Pillow's own buffer is 338 MB."""
    result = measure(bomb16)
    assert "error" not in result, result
    assert result["size"] == [13_000, 13_000]
    assert result["working"] == [320, 320] and result["mode"] == "RGB"
    assert result["extra_mb"] < 700, result
    assert result["seconds"] < 10, result


@pytest.mark.slow  # big image, ~5 s
def test_big_rgba_is_flattened_without_full_size_copies(rgba_12k):
    """Under a raised decoded cap, RGBA needs its 576 MB buffer and little else (was 5 full-size copies)."""
    result = measure(rgba_12k, max_decoded_bytes=1024 * MB)
    assert "error" not in result, result
    assert result["working"] == [320, 320]
    assert np.allclose(result["pixel"], (227, 177, 152), atol=1)  # half-transparent, onto white
    assert result["extra_mb"] < 576 + 150, result
    assert result["seconds"] < 15, result


def test_image_over_the_decoded_bytes_cap_is_refused_from_its_header(rgba_12k):
    """At the default caps: 144 MP passes the pixel cap, 576 MB decoded does not; no pixel is decoded."""
    assert 12_000 * 12_000 * 4 > MAX_DECODED_BYTES
    result = measure(rgba_12k)
    assert result.get("error") == "ImageTooLarge", result
    assert "12000x12000" in result["message"] and "RGBA" in result["message"] and "limit" in result["message"]
    assert result["seconds"] < 1 and result["extra_mb"] < 50, result


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def test_decoded_bytes_cap_is_configurable_and_checked_before_load(monkeypatch, tmp_path):
    data = encode(Image.fromarray(np.full((3000, 3000), 40000, dtype=np.uint16)))  # 18 MB as I;16
    loads = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self) or real_load(self))
    with pytest.raises(ImageTooLarge, match=r"3000x3000 in mode I;16 = 17 MB once decoded; the limit is 10 MB"):
        decode_bytes(data, max_decoded_bytes=10 * MB)
    assert loads == []
    path = tmp_path / "grey16.png"
    path.write_bytes(data)
    with pytest.raises(ImageTooLarge, match="once decoded"):
        decode_file(path, max_decoded_bytes=10 * MB)
    assert loads == []
    assert decode_bytes(data, max_decoded_bytes=18 * MB).image.size == (320, 320)  # 2 bytes a pixel: fits
    prepared = prepare(
        FoundFile(path, len(data), 0.0), max_bytes=40 * MB, max_pixels=MAX_IMAGE_PIXELS, max_decoded_bytes=10 * MB
    )
    assert prepared.error and "once decoded" in prepared.error


def test_bytes_per_pixel_follow_the_decoded_mode():
    """Same 2000 x 2000 picture: 4 MB as L, 8 MB as 16-bit, 12 MB as RGB, 16 MB as RGBA."""
    grey = np.full((2000, 2000), 100, dtype=np.uint8)
    cases = {
        "L": Image.fromarray(grey),
        "I;16": Image.fromarray(grey.astype(np.uint16) * 300),
        "RGB": Image.new("RGB", (2000, 2000)),
        "RGBA": Image.new("RGBA", (2000, 2000)),
    }
    for (mode, image), megabytes in zip(cases.items(), (4, 8, 12, 16)):
        data = encode(image)
        need = 2000 * 2000 * megabytes // 4
        decode_bytes(data, max_decoded_bytes=need)
        with pytest.raises(ImageTooLarge, match=f"mode {mode} "):
            decode_bytes(data, max_decoded_bytes=need - 1)


def test_reduced_16_bit_keeps_its_scale():
    """Reduced before it is scaled to 8 bits, a big 16-bit ramp still spans 0..255 (not clipped white)."""
    ramp = np.tile(np.linspace(0, 65535, 6000).astype(np.uint16), (1400, 1))  # reduced 2x, then resized
    decoded = decode_bytes(encode(Image.fromarray(ramp)))
    row = np.asarray(decoded.image)[100, :, 0].astype(int)
    assert decoded.image.size == (1371, 320)
    assert row[0] < 3 and row[-1] > 252 and abs(row[685] - 127) <= 2
    assert np.all(np.diff(row) >= 0)


# -- 2. read_file opens only regular files, not through a final symlink ----------------------
def run_bounded(fn, timeout: float = 5.0):
    """Run ``fn`` in a daemon thread; return (finished, result or exception)."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["value"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive(), box.get("value")


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    t = time.monotonic()
    finished, value = run_bounded(lambda: read_file(fifo))
    if not finished:  # regression: the open is waiting for a writer; give it EOF so the thread ends
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    assert finished, "read_file blocked on a FIFO"
    assert time.monotonic() - t < 2
    assert isinstance(value, DecodeError) and "not a regular file" in str(value)


def test_symlink_at_the_last_component_is_refused(tmp_path):
    real = tmp_path / "real.png"
    real.write_bytes(encode(Image.new("RGB", (8, 8))))
    link = tmp_path / "photo.png"
    link.symlink_to(real)
    with pytest.raises(DecodeError, match="is a symbolic link"):
        read_file(link)
    with pytest.raises(DecodeError, match="is a symbolic link"):
        decode_file(link)
    # What callers do with a path a person typed: resolve it, so their own links work.
    assert decode_file(link.resolve()).image.size == (8, 8)


def test_dangling_symlink_and_symlink_to_a_device_are_refused(tmp_path):
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    for name in ("gone.png", "zero.png"):
        with pytest.raises(DecodeError, match="is a symbolic link"):
            read_file(tmp_path / name)


def test_devices_and_directories_are_refused():
    for path in (Path("/dev/zero"), Path("/dev/null")):
        if path.exists():
            finished, value = run_bounded(lambda: read_file(path, 1024))
            assert finished and isinstance(value, DecodeError) and "not a regular file" in str(value), value


def test_directory_is_refused(tmp_path):
    with pytest.raises(DecodeError, match="not a regular file"):
        read_file(tmp_path)


def test_regular_file_is_read_and_the_size_cap_holds(tmp_path):
    data = encode(Image.new("RGB", (30, 20), (1, 2, 3)))
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    assert read_file(path) == data
    assert decode_file(path).image.getpixel((0, 0)) == (1, 2, 3)
    assert read_file(path, len(data)) == data
    with pytest.raises(ImageTooLarge, match="limit"):
        read_file(path, len(data) - 1)
    with pytest.raises(FileNotFoundError):
        read_file(tmp_path / "missing.png")


# -- 3. decode workers exit with their parent ------------------------------------------------
CHILD = r"""
import sys, time
from functools import partial
from pathlib import Path
from visualsearch.ingest.pipeline import PreparedStream, prepare
from visualsearch.ingest.scan import scan_folder

if __name__ == "__main__":
    files = list(scan_folder(Path(sys.argv[1])))
    job = partial(prepare, max_bytes=1 << 26, max_pixels=1 << 28)
    stream = iter(PreparedStream(files, job, workers=2, processes=True, window=4))
    print("ready", next(stream).error, flush=True)  # workers exist and have done work
    time.sleep(120)  # the test kills us long before
"""


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(p) for p in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for a reaper (PID 1 here may never reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.slow  # subprocesses
def test_decode_workers_exit_when_their_parent_is_killed(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(6):
        Image.new("RGB", (64, 48), (40 * i, 0, 0)).save(folder / f"p{i}.png")
    script = tmp_path / "child.py"  # a file, so spawned workers can import the main module
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    workers: set[int] = set()
    try:
        ready = []
        reader = threading.Thread(target=lambda: ready.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(60)
        assert ready and ready[0].startswith("ready None"), (ready, proc.poll())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            workers = {p for p in children(proc.pid) if "spawn_main" in cmdline(p)}
            if len(workers) == 2:
                break
            time.sleep(0.1)
        assert len(workers) == 2, {p: cmdline(p) for p in children(proc.pid)}
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(p) for p in workers):
            time.sleep(0.1)
        left = {p: cmdline(p) for p in workers if alive(p)}
        assert not left, f"decode workers outlived their parent: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid in workers:  # only if the test failed: do not leave them behind
            if alive(pid) and "spawn_main" in cmdline(pid):
                os.kill(pid, signal.SIGKILL)
        proc.stdout.close()
        proc.stderr.close()
