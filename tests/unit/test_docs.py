"""Docs that match the code: README's source tree and model table, and relative links in README.md and docs/.

The tree in README's ``## How it is built`` section must name exactly the package folders and
modules of src/visualsearch (``scripts/readme-tree`` prints it from disk, with the README's
descriptions, ready to paste). Every relative link in README.md and docs/*.md must reach an
existing file, and a link to a heading of a Markdown file must reach an existing heading.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.paths import REPO

README = REPO / "README.md"
MARKDOWN = [README, *sorted((REPO / "docs").glob("*.md"))]


def _load_script(name: str) -> ModuleType:
    """A script of scripts/ (no .py suffix) as a module: its code is shared with the test."""
    path = REPO / "scripts" / name
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


tree = _load_script("readme-tree")
models_table = _load_script("models-table")


def test_readme_model_table_matches_the_curated_list_and_measured_speeds():
    """README's "Choosing a model" table is what scripts/models-table prints from models/zoo.py."""
    shown = models_table.readme_table(README.read_text(encoding="utf-8"))
    assert shown == models_table.table(), "README's model table is stale: run scripts/models-table --write"


# -- the source tree --------------------------------------------------------------------------


def test_readme_tree_names_every_module_and_nothing_else():
    readme = tree.readme_entries(README.read_text(encoding="utf-8"))
    disk = tree.disk_entries(REPO / "src" / "visualsearch")
    missing, extra = tree.compare(readme, disk)
    placeholders = [path for path, desc in readme.items() if desc == tree.PLACEHOLDER]
    problems = []
    if missing:
        problems.append("on disk, missing from the README tree:\n" + "\n".join(f"  + {p}" for p in missing))
    if extra:
        problems.append("in the README tree, not on disk:\n" + "\n".join(f"  - {p}" for p in extra))
    if placeholders:
        problems.append("still described as a placeholder:\n" + "\n".join(f"  ? {p}" for p in placeholders))
    assert not problems, (
        "README.md '## How it is built' tree and src/visualsearch disagree "
        "(run scripts/readme-tree to print the tree from disk):\n" + "\n".join(problems)
    )


BLOCK = """\
src/visualsearch/
  ingest/    scan.py (walk folders)  decode.py (Pillow: EXIF,
             modes, caps)  fetch.py
  catalog/   SQLite via SQLAlchemy, Alembic migrations: assets (the source of truth)
  search/    engine.py: text, asset id, file -> ranked results (filters, paging)
  api/       FastAPI app: routes/ (assets, search), uploads.py (streaming
             multipart with a fake.py in parentheses), limits.py (body size)
  web/       the page at /: templates/index.html, static/app.css (REST API only);
             /docs: Swagger UI
  config.py (Settings)
  services/
    adding.py (adding images)
    routes/
      assets.py
    deep.py (back in services/)
"""


def test_parser_reads_the_readme_layout():
    entries = tree.parse_tree(BLOCK)
    assert list(entries) == [
        "ingest/",
        "ingest/scan.py",
        "ingest/decode.py",
        "ingest/fetch.py",
        "catalog/",
        "search/",
        "search/engine.py",
        "api/",
        "api/routes/",
        "api/uploads.py",
        "api/limits.py",
        "web/",
        "config.py",
        "services/",
        "services/adding.py",
        "services/routes/",
        "services/routes/assets.py",
        "services/deep.py",
    ]
    assert entries["ingest/decode.py"] == "Pillow: EXIF, modes, caps"
    assert entries["ingest/fetch.py"] == ""
    assert entries["catalog/"] == "SQLite via SQLAlchemy, Alembic migrations: assets (the source of truth)"
    assert entries["search/engine.py"] == "text, asset id, file -> ranked results (filters, paging)"
    assert entries["api/"] == "FastAPI app"
    assert entries["api/routes/"] == "assets, search"
    assert entries["api/uploads.py"] == "streaming multipart with a fake.py in parentheses"
    assert entries["config.py"] == "Settings"


def test_readme_tree_script_output_round_trips(tmp_path):
    """What scripts/readme-tree prints, pasted into the README, passes the tree test."""
    package = tmp_path / "visualsearch"
    for rel in [
        "__init__.py",
        "__main__.py",
        "config.py",
        "api/__init__.py",
        "api/app.py",
        "api/routes/__init__.py",
        "api/routes/assets.py",
        "catalog/store.py",
        "catalog/migrations/env.py",
        "catalog/migrations/versions/0001_initial.py",
        "web/__init__.py",
        "web/static/app.js",
        "web/templates/index.html",
        "models/data/x.json",
    ]:
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text("")
    disk = tree.disk_entries(package)
    assert disk == [
        "api/",
        "api/app.py",
        "api/routes/",
        "api/routes/assets.py",
        "catalog/",
        "catalog/store.py",
        "config.py",
        "web/",
    ]
    described = {"api/": "FastAPI app", "api/app.py": "a long description " * 8}
    printed = tree.render(disk, described)
    readme = f"# x\n\n## How it is built\n\n```\n{printed}\n```\n\n## Next\n"
    entries = tree.readme_entries(readme)
    assert tree.compare(entries, disk) == ([], [])
    assert entries["api/app.py"] == ("a long description " * 8).strip()
    assert entries["catalog/store.py"] == tree.PLACEHOLDER


# -- relative links ---------------------------------------------------------------------------

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'(][^)]*)?\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> str:
    """The Markdown without fenced blocks and code spans (links there are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    prose = _prose(text)
    return INLINE_LINK.findall(prose) + REFERENCE.findall(prose)


def anchors(text: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, -1 for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def test_link_helpers():
    text = (
        '# Top\n\nSee [a](docs/a.md#part-two), ![img](docs/x.jpg "title"), [web](https://x.org),'
        " `[not](a-link.md)` and [in page](#top).\n\n```\n[nor](this.md)\n## Not a heading\n```\n\n"
        "## Part two: the rest\n## Part two: the rest\n[ref]: benchmarks/abuse.py\n"
    )
    assert links(text) == ["docs/a.md#part-two", "docs/x.jpg", "https://x.org", "#top", "benchmarks/abuse.py"]
    assert anchors(text) == {"top", "part-two-the-rest", "part-two-the-rest-1"}


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_reach_existing_files(doc: Path):
    text = doc.read_text(encoding="utf-8")
    broken = []
    for target in links(text):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # http(s), mailto: not checked here
        path_part, _, fragment = target.partition("#")
        path = (doc.parent / path_part).resolve() if path_part else doc
        if not path.exists():
            broken.append(f"{target}: no such file {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
        elif fragment and path.suffix == ".md" and fragment not in anchors(path.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading #{fragment} in {path.relative_to(REPO)}")
    assert not broken, f"broken links in {doc.relative_to(REPO)}:\n" + "\n".join(f"  {b}" for b in broken)
