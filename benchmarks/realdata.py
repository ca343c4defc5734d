#!/usr/bin/env python
"""Rebuild the real-world image sets of benchmarks/data/ from Debian packages.

Why: the labelled real-data sets (e.g. benchmarks/data/duplicates_real/) must not commit
images, yet must be reproducible on any machine of the project. Their images all come from
Debian packages (wallpapers, artwork, clip art), so each set stores only references of the
form ``"PACKAGE:path/inside/package"`` (e.g.
``"mate-backgrounds:usr/share/backgrounds/mate/nature/Wood.jpg"``) and this module turns a
reference back into a file: it downloads the package with ``apt-get download`` (no install,
no root needed beyond apt's cache being readable) and unpacks it with ``dpkg-deb -x`` into
``ROOT/PACKAGE/``. The reference's path is then ``ROOT/PACKAGE/path/inside/package``.

ROOT is ``/work/realdata`` unless the environment variable ``VISUALSEARCH_REALDATA`` says
otherwise. Downloaded ``.deb`` files are kept in ``ROOT/debs/``. Other helpers rely on the
``ROOT/PACKAGE/`` layout, so keep it.

The package version is whatever the configured apt sources offer; the README of each set
records the versions it was labelled on (a newer version may move or change files).

Usage:
    python benchmarks/realdata.py PACKAGE...                 # fetch and unpack packages
    python benchmarks/realdata.py --list benchmarks/data/duplicates_real/images.txt
                                                             # fetch every package a list names
Standard library only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

DEFAULT_ROOT = Path("/work/realdata")
ENV_VAR = "VISUALSEARCH_REALDATA"


class RealDataError(RuntimeError):
    """A package could not be fetched/unpacked or a reference does not resolve."""


def default_root() -> Path:
    """The unpack root: $VISUALSEARCH_REALDATA if set, else /work/realdata.

    An env var rather than a constant so CI or a developer with little space in /work can
    point the sets elsewhere without editing code.
    """
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_ROOT


def _require(tool: str) -> str:
    """Path of ``tool`` or a clear error: without apt/dpkg the sets cannot be rebuilt here."""
    found = shutil.which(tool)
    if found is None:
        raise RealDataError(
            f"{tool!r} not found on PATH: the real-data sets are rebuilt from Debian packages "
            f"with apt-get download + dpkg-deb -x, which need a Debian/Ubuntu machine "
            f"(with apt sources configured and 'apt-get update' run once)."
        )
    return found


def ensure_package(name: str, root: Path | None = None) -> Path:
    """Return ``root/name``, downloading and unpacking package ``name`` there if needed.

    Idempotent and cheap when the package is already unpacked (the directory exists and is
    non-empty), so benchmarks can call it for every reference. Unpacks into a temporary
    directory first and renames it, so an interrupted run never leaves a half-unpacked tree
    that would later pass for complete.
    """
    root = Path(root) if root is not None else default_root()
    target = root / name
    if target.is_dir() and any(target.iterdir()):
        return target
    apt_get = _require("apt-get")
    dpkg_deb = _require("dpkg-deb")
    debs = root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    existing = sorted(debs.glob(f"{name}_*.deb"))
    if not existing:
        proc = subprocess.run([apt_get, "download", name], cwd=debs, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RealDataError(
                f"apt-get download {name} failed (exit {proc.returncode}); "
                f"run 'apt-get update' first if the package is unknown:\n{proc.stderr.strip()}"
            )
        existing = sorted(debs.glob(f"{name}_*.deb"))
        if not existing:
            raise RealDataError(f"apt-get download {name} produced no {name}_*.deb in {debs}")
    deb = existing[-1]
    tmp = root / f".{name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    proc = subprocess.run([dpkg_deb, "-x", str(deb), str(tmp)], capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RealDataError(f"dpkg-deb -x {deb} failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    if target.exists():  # an empty leftover directory
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def package_version(name: str, root: Path | None = None) -> str | None:
    """Version of the downloaded .deb of ``name`` (dpkg-deb -f), or None if not downloaded.

    Lets a benchmark report which package versions it ran on, since labels were made on
    specific versions.
    """
    root = Path(root) if root is not None else default_root()
    debs = sorted((root / "debs").glob(f"{name}_*.deb"))
    if not debs:
        return None
    proc = subprocess.run([_require("dpkg-deb"), "-f", str(debs[-1]), "Version"], capture_output=True, text=True)
    return proc.stdout.strip() or None


def split_ref(ref: str) -> tuple[str, str]:
    """Split ``"PACKAGE:path/inside"`` into (package, path); rejects absolute or '..' paths."""
    pkg, sep, rel = ref.strip().partition(":")
    if not sep or not pkg or not rel or rel.startswith("/") or ".." in Path(rel).parts:
        raise RealDataError(f"bad reference {ref!r}: expected 'PACKAGE:relative/path'")
    return pkg, rel


def resolve(ref: str, root: Path | None = None, fetch: bool = True) -> Path:
    """Path of the file a ``"PACKAGE:path/inside/package"`` reference names.

    Fetches and unpacks the package on first use (``fetch=False`` to only look), and fails
    loudly if the file is missing, because a silently skipped image would change a
    benchmark's counts without anyone noticing.
    """
    pkg, rel = split_ref(ref)
    root = Path(root) if root is not None else default_root()
    if pkg == "skimage":  # scikit-image's sample photos, exported once as PNG (see data/scenes/README.md)
        path = root / "skimage-data" / rel
        if not path.exists():
            raise RealDataError(
                f"{ref!r}: export scikit-image's sample images to {path.parent} first "
                "(benchmarks/data/scenes/README.md says how)"
            )
        return path
    base = ensure_package(pkg, root) if fetch else root / pkg
    path = base / rel
    if not path.exists():
        raise RealDataError(f"{ref!r} does not exist at {path} (another package version?)")
    return path


def read_refs(list_file: Path) -> list[str]:
    """References listed in a text file, one per line; blank lines and '#' comments skipped."""
    refs = []
    for line in Path(list_file).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            refs.append(line)
    return refs


def copy_refs(list_file: Path, folder: Path) -> dict[str, str]:
    """Copy the files a reference list names into ``folder`` (as ``NNN-name``, kept between runs).

    Returns reference by resolved copy path, so a benchmark can map a search result back to its label.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ref_of = {}
    for i, ref in enumerate(read_refs(list_file)):
        src = resolve(ref)
        dest = folder / f"{i:03d}-{src.name}"
        if not dest.exists():
            shutil.copy(src, dest)
        ref_of[str(dest.resolve())] = ref
    return ref_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", nargs="*", help="Debian package names to fetch and unpack")
    parser.add_argument(
        "--list",
        type=Path,
        action="append",
        default=[],
        help="a file of PACKAGE:path references: fetch every package it names and check each file",
    )
    parser.add_argument("--root", type=Path, default=None, help=f"unpack root (default ${ENV_VAR} or {DEFAULT_ROOT})")
    args = parser.parse_args(argv)
    root = args.root or default_root()
    names = list(args.packages)
    refs: list[str] = []
    for lf in args.list:
        refs += read_refs(lf)
        names += [split_ref(r)[0] for r in refs]
    if not names:
        parser.error("give package names or --list FILE")
    try:
        for name in dict.fromkeys(names):
            path = ensure_package(name, root)
            print(f"{name}\t{package_version(name, root) or '?'}\t{path}")
    except RealDataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    missing = [r for r in refs if not (root / split_ref(r)[0] / split_ref(r)[1]).exists()]
    for r in missing[:20]:
        print(f"missing: {r}", file=sys.stderr)
    if refs:
        print(f"{len(refs) - len(missing)} of {len(refs)} references resolve, {len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
