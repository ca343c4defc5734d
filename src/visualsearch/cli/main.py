"""``visualsearch``: index a folder, then search it by text or by image.

Every command takes ``--library DIR`` (default: a per-user data folder, or
``$VISUALSEARCH_LIBRARY``). Errors are printed as one readable line and the
exit code is non-zero; no stack traces for expected problems.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..config import MAX_SCORE, Settings
from ..errors import ConfigError, VisualSearchError

if TYPE_CHECKING:  # imported where used: a command loads only what it needs
    from ..duplicates import DuplicateGroup, Member
    from ..services import DuplicatesService, KeyService, Library, ModelInfo, ReembedReport, SearchResult
    from ..services.search import Why

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Self-hosted visual search: find images by words or by another image.",
)
# soft_wrap: long messages are left for the terminal to wrap, not broken mid-sentence at 80 columns
# (which also broke them in logs and pipes).
console = Console(stderr=True, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

LibraryOpt = Annotated[
    Path | None,
    typer.Option("--library", "-L", help="Library folder (default: per-user data folder, or $VISUALSEARCH_LIBRARY)."),
]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="How many results.")]
MinScoreOpt = Annotated[
    float | None,
    typer.Option(
        "--min-score",
        min=-MAX_SCORE,
        max=MAX_SCORE,
        help="Leave out results scoring below this (a cosine similarity; text queries with colour words or words "
        "read in pictures score more, up to about 2.3).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print results as JSON.")]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", help="Embedding model (default: bundled conse-efficientnet-lite0-minilm; or $VISUALSEARCH_MODEL)."
    ),
]


def _settings(library: Path | None, **overrides: Any) -> Settings:
    """The settings, or a one-line error naming the bad VISUALSEARCH_* variable (no traceback)."""
    try:
        return Settings.from_env(library, **overrides)
    except ConfigError as exc:
        _fail(str(exc))


def _open(library: Path | None, model: str | None = None) -> Library:
    from ..services import Library

    return Library(_settings(library, model=model))


def _counting_bar(label: str, as_json: bool, transient: bool = False) -> Progress:
    """A progress bar of done/total with the time left (hidden with --json)."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=as_json,
        transient=transient,
    )


def _fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[bold red]error:[/] {escape(message)}")  # a path with [brackets] is not markup
    raise typer.Exit(code)


def _printable(text: str) -> str:
    """Text read in a picture, safe for a terminal: lines joined with " / ", control and format
    characters (escape sequences, bidi overrides) dropped."""
    lines = ("".join(c for c in line if unicodedata.category(c) not in ("Cc", "Cf")) for line in text.splitlines())
    return " / ".join(lines)


def _why_text(why: Why) -> str:
    parts = ", ".join(f"{'-' if p.negative else ''}{p.text} {p.score:.2f}" for p in why.parts)
    seen = f"seen as {', '.join(why.concepts)}; " if why.concepts else ""
    text = "; text in the picture: " + json.dumps(_printable(why.text), ensure_ascii=False) if why.text else ""
    return f"{seen}closeness to each part: {parts}{text}"


def _print_results(
    results: Sequence[SearchResult], as_json: bool, why: dict[int, Why] | None = None, close: bool | None = None
) -> None:
    """``close``: the text query's verdict (None: not judged); in JSON on every row, as the API's
    ``close_matches``, so a script can tell the nearest images from matches."""
    if as_json:
        rows = [r.to_dict() for r in results]
        if close is not None:
            for row in rows:
                row["close_matches"] = close
        if why is not None:
            for row in rows:
                w = why.get(row["asset_id"])
                row["why"] = (
                    None
                    if w is None
                    else {"parts": [p.__dict__ for p in w.parts], "concepts": w.concepts, "text": w.text}
                )
        out.print_json(json.dumps(rows))
        return
    if why is not None:  # one line of reasons under each result
        for r in results:
            print(f"{r.rank:>4}  {r.score:>7.4f}  {r.asset_id:>6}  {r.source}")
            if r.asset_id in why:
                print(f"{'':>21}{_why_text(why[r.asset_id])}")
        return
    if not results:
        console.print("no results")
        return
    if not out.is_terminal:  # piped: one result per line, never wrapped or cut
        print(f"{'rank':>4}  {'score':>7}  {'id':>6}  path")
        for r in results:
            print(f"{r.rank:>4}  {r.score:>7.4f}  {r.asset_id:>6}  {r.source}")
        return
    table = Table(show_edge=False, pad_edge=False, box=None)
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id", justify="right")
    table.add_column("path", overflow="fold")
    worded = any(r.words for r in results)
    if worded:  # some pictures show the query's words (read by OCR)
        table.add_column("words in picture")
    for r in results:
        cells = [str(r.rank), f"{r.score:.4f}", str(r.asset_id), r.source]
        table.add_row(*cells, *([", ".join(r.words)] if worded else []))
    out.print(table)


@app.command()
def index(
    folder: Annotated[Path, typer.Argument(help="Folder of images to add (searched recursively).")],
    library: LibraryOpt = None,
    model: ModelOpt = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove catalog entries whose files are gone.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Try failed files again.")] = False,
    as_json: JsonOpt = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Decode and embed on a Ray cluster: host:port, ray://host:port, or `local` for one on this "
            "machine (pip install 'visualsearch[ray]'; or $VISUALSEARCH_RAY_ADDRESS).",
        ),
    ] = None,
    ray_workers: Annotated[
        int | None,
        typer.Option("--ray-workers", min=1, help="Embedding workers on the Ray cluster (default: one per node)."),
    ] = None,
    copies: Annotated[
        bool | None,
        typer.Option(
            "--copies/--no-copies",
            help="After indexing new images, check the library's candidate copies that were never checked pixel "
            "by pixel, so that `visualsearch duplicates` answers at once (default: $VISUALSEARCH_COPIES_AT_INDEX, "
            "on); --copies checks even when nothing was added. With --json, the report's copy_groups is how many "
            "groups of copies the library holds (null when not checked, or stopped).",
        ),
    ] = None,
) -> None:
    """Walk FOLDER, decode and embed new or changed images, and store them. Resumable."""
    from ..services import Library

    lib = Library(_settings(library, model=model, ray_address=ray))
    if ray_workers is not None and not lib.settings.ray_address:
        _fail("--ray-workers needs --ray ADDRESS (or VISUALSEARCH_RAY_ADDRESS)")
    progress = Progress(
        TextColumn("[bold]indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        disable=as_json,
    )
    task: TaskID | None = None

    def on_plan(todo: int, unchanged: int) -> None:
        nonlocal task
        change = lib.model_change()
        if change:
            console.print(
                f"note: the library still uses {change.from_name}; new images are embedded with it. "
                f"Run `visualsearch reembed` to move to {change.to_name}."
            )
        console.print(f"{todo} image(s) to index, {unchanged} unchanged")
        task = progress.add_task("index", total=todo, rate="")

    def on_progress(done: int, total: int) -> None:
        assert task is not None  # on_plan runs before the first batch
        elapsed = progress.tasks[0].elapsed or 0
        progress.update(task, completed=done, rate=f"{done / elapsed:.1f} img/s" if elapsed else "")

    try:
        with progress:
            report = lib.index_folder(
                folder,
                prune=prune,
                retry_failed=retry_failed,
                progress=on_progress,
                on_plan=on_plan,
                ray_workers=ray_workers,
            )
    except KeyboardInterrupt:
        counts = lib.catalog.counts()
        console.print(
            f"\ninterrupted: {counts.get('indexed', 0)} image(s) are safely in the library; "
            "run the same command again to continue"
        )
        raise typer.Exit(130) from None
    except VisualSearchError as exc:
        _fail(str(exc))
    # An explicit --copies checks even when nothing was added (it finishes a check that was stopped).
    check = copies if copies is not None else bool(report.indexed) and lib.settings.copies_at_index
    if as_json:
        groups = _check_copies(lib, as_json) if check else None
        out.print_json(json.dumps(report.__dict__ | {"copy_groups": groups}))
        if check and groups is None:
            raise typer.Exit(130)
        return
    console.print(
        f"indexed {report.indexed}, failed {report.failed}, unchanged {report.unchanged}, "
        f"pruned {report.pruned} (library: {lib.settings.library_dir})"
    )
    for source, reason in report.failures[:20]:
        console.print(f"  [yellow]failed[/] {source}: {reason}")
    if len(report.failures) > 20:
        console.print(f"  ... and {len(report.failures) - 20} more (see `visualsearch status --failures`)")
    from ..services import unread_count

    unread = unread_count(lib)
    if unread:
        console.print(
            f"{unread} picture(s) have not been read with the current text-reading settings (indexed before "
            "reading was on, read at another VISUALSEARCH_OCR_SIZE, or unreadable): run `visualsearch read-text`"
        )
    if check:
        groups = _check_copies(lib, as_json)
        if groups is None:
            raise typer.Exit(130)
        console.print(
            f"{groups} group(s) of copies in the library: `visualsearch duplicates` lists them"
            if groups
            else "no copies in the library"
        )


def _check_copies(lib: Library, as_json: bool) -> int | None:
    """The duplicates run after indexing (its verdicts are kept): how many groups of copies it found,
    or None when Ctrl-C stopped it."""
    from ..duplicates import DEFAULT_THRESHOLD
    from ..services import DuplicatesService

    try:
        groups = _duplicates_with_bar(DuplicatesService(lib), DEFAULT_THRESHOLD, as_json, "checking for copies")
    except KeyboardInterrupt:
        console.print(
            "\ninterrupted while checking for copies: the indexing is complete, and the pairs checked so far are "
            "kept; `visualsearch duplicates` (or `index --copies`) finishes the check"
        )
        return None
    return len(groups)


def _duplicates_with_bar(
    service: DuplicatesService, threshold: float, as_json: bool, label: str
) -> list[DuplicateGroup]:
    """The library's groups of copies, with a bar following the pixel check of candidate pairs."""
    bar = _counting_bar(label, as_json, transient=True)
    task = bar.add_task("check", total=None)
    with bar:
        return service.duplicates(threshold, progress=lambda done, total: bar.update(task, completed=done, total=total))


@app.command()
def reembed(library: LibraryOpt = None, model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """Re-embed every image with the configured model, then switch searches to it. Resumable.

    Until it finishes, searches (here and in a running server) keep using the
    previous model's vectors. `visualsearch serve` starts this by itself.
    """
    lib = _open(library, model)
    report = _reembed(lib, as_json)
    if as_json:
        out.print_json(json.dumps(report.__dict__))
        return
    _reembed_summary(lib, report)


@app.command("read-text")
def read_text(library: LibraryOpt = None, as_json: JsonOpt = False) -> None:
    """Read the words in pictures already in the library (OCR), so text searches find them. Resumable.

    New pictures are read while indexing when VISUALSEARCH_OCR=true; this reads the ones indexed
    before (needs `pip install 'visualsearch[ocr]'`). Reading takes about half a second a picture.
    """
    from ..services import read_library_text

    lib = _open(library)
    progress = _counting_bar("reading text", as_json)
    try:
        with progress:
            task = progress.add_task("read", total=None)
            report = read_library_text(lib, lambda done, total: progress.update(task, completed=done, total=total))
    except KeyboardInterrupt:
        console.print("\ninterrupted: the pictures read so far are kept; run the same command again to continue")
        raise typer.Exit(130) from None
    except VisualSearchError as exc:
        _fail(str(exc))
    if as_json:
        out.print_json(json.dumps(report.__dict__))
        return
    if report.todo == 0:
        console.print("nothing to read: every picture in the library has been read")
        return
    console.print(f"read {report.read} picture(s), text found in {report.with_text}, failed {report.failed}")
    for source, reason in report.failures[:20]:
        console.print(f"  [yellow]failed[/] {escape(source)}: {escape(reason)}")


def _warn_if_moving(lib: Library, as_json: bool) -> None:
    """After an upgrade or `models use --no-reembed`, results can be partial until re-embedding ends: say so."""
    change = lib.model_change()
    if change is not None and change.done < change.total:
        console.print(
            f"[yellow]note[/]: the library is moving to {change.to_name} ({change.done} of {change.total} images "
            "re-embedded); run `visualsearch reembed` (or keep `visualsearch serve` running) to finish"
        )


def _reembed(lib: Library, as_json: bool) -> ReembedReport:
    """Run re-embedding with a progress bar; Ctrl-C keeps what was done and says how to go on."""
    from ..services import reembed_library

    change = lib.model_change()
    if change and not as_json:
        console.print(
            f"re-embedding {change.total} image(s): {change.from_name} -> {change.to_name} ({change.done} already done)"
        )
    progress = _counting_bar("re-embedding", as_json)
    task = progress.add_task("reembed", total=None)
    try:
        with progress:
            return reembed_library(lib, progress=lambda done, total: progress.update(task, completed=done, total=total))
    except KeyboardInterrupt:
        console.print(
            "\ninterrupted: what was embedded is kept; run `visualsearch reembed` to continue "
            "(searches still use the previous model)"
        )
        raise typer.Exit(130) from None
    except VisualSearchError as exc:
        _fail(str(exc))


def _reembed_summary(lib: Library, report: ReembedReport) -> None:
    if report.switched:
        console.print(
            f"done: {report.embedded} image(s) re-embedded in {report.seconds:.0f} s; "
            f"searches now use {lib.settings.model}"
        )
    elif report.embedded or report.failed:
        console.print(f"embedded {report.embedded} image(s) that had no vector")
    else:
        console.print(f"nothing to do: every image already has a vector from {lib.settings.model}")
    for source, reason in report.failures[:20]:
        console.print(f"  [yellow]failed[/] {source}: {reason}")
    if report.failed:
        console.print(f"{report.failed} image(s) could not be read; they keep no vector from the new model")


@app.command()
def search(
    query: Annotated[
        str,
        typer.Argument(
            help='What to look for, in plain words, e.g. "dog on a beach". "-word" or -"a phrase" leaves out '
            'what looks like it ("beach -people"), "+ phrase" adds another thing to look for, "^2" after a part '
            'weighs it ("red car + night^0.5").'
        ),
    ],
    asset_id: Annotated[
        int | None, typer.Option("--id", help="Start from an image in the library: like asset N, changed by the words.")
    ] = None,
    library: LibraryOpt = None,
    model: ModelOpt = None,
    limit: LimitOpt = 20,
    min_score: MinScoreOpt = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Under each result: what the model sees in it and its score per part.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Find images by describing them. Scores are cosine similarities, best first.

    With --id N: images like asset N, changed by the words (`search "at night" --id 42`).
    """
    from ..services import SearchService

    lib = _open(library, model)
    try:
        engine = SearchService(lib)
        _warn_if_moving(lib, as_json)
        understood = engine.understand(query)
        if not understood.plain and not as_json:
            console.print(f"searching for: {escape(understood.describe())}")
        results, verdict = engine.text_with_verdict(query, asset_id=asset_id, limit=limit, min_score=min_score)
        if verdict is not None and not verdict.close and results:
            console.print(f"[yellow]No close matches[/]; showing the nearest {len(results)}")
        why = engine.explain(query, results) if explain else None
    except (VisualSearchError, ValueError) as exc:
        _fail(str(exc))
    _print_results(results, as_json, why, None if verdict is None else verdict.close)


@app.command()
def similar(
    image: Annotated[Path | None, typer.Argument(help="Reference image file (up to 40 MB).")] = None,
    asset_id: Annotated[int | None, typer.Option("--id", help="Reference: an asset already in the library.")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Reference: an image at an http(s) URL.")] = None,
    library: LibraryOpt = None,
    model: ModelOpt = None,
    limit: LimitOpt = 20,
    min_score: MinScoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find images that look like a reference image (a file, an asset id or a URL).

    With --id, the reference asset itself is left out of the results.
    """
    from ..services import SearchService

    given = [x is not None for x in (image, asset_id, url)]
    if sum(given) != 1:
        _fail("give exactly one reference: an image file, --id N or --url URL", code=2)
    lib = _open(library, model)
    engine = SearchService(lib)
    try:
        if image is not None:
            results = engine.similar_to_file(image, limit=limit, min_score=min_score)
        elif asset_id is not None:
            results = engine.similar_to_asset(asset_id, limit=limit, min_score=min_score)
        else:
            assert url is not None  # exactly one reference was given (checked above)
            results = engine.similar_to_url(url, limit=limit, min_score=min_score)
    except (VisualSearchError, ValueError) as exc:
        _fail(str(exc))
    _print_results(results, as_json)


@app.command()
def status(
    library: LibraryOpt = None,
    model: ModelOpt = None,
    failures: Annotated[bool, typer.Option("--failures", help="List files that failed, with the reason.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show what the library holds: counts, model, index type."""
    lib = _open(library, model)
    counts = lib.catalog.counts()
    try:
        change = lib.model_change()
        model_id = change.from_model if change else lib.requested_embedder.model_id
    except VisualSearchError as exc:  # e.g. the chosen model is not downloaded: say so, and how to fix it
        _fail(str(exc))
    info: dict[str, Any] = {
        "library": str(lib.settings.library_dir),
        "indexed": counts.get("indexed", 0),
        "failed": counts.get("failed", 0),
        "model": change.from_name if change else lib.settings.model,
        "model_id": model_id,
        "reembedding": None
        if change is None
        else {"to": change.to_name, "to_model_id": change.to_model, "done": change.done, "total": change.total},
    }
    from ..services import text_status

    info["text_read"] = text_status(lib)
    read, worded = info["text_read"]["pictures"], info["text_read"]["with_words"]
    if failures:
        info["failures"] = [{"id": a.id, "source": a.source, "error": a.error} for a in lib.catalog.failures(1000)]
    if as_json:
        out.print_json(json.dumps(info))
        return
    for key in ("library", "indexed", "failed", "model"):
        out.print(f"{key:8} {info[key]}")
    if read or lib.settings.ocr:  # words in pictures (OCR): what was read, and whether reading is on
        state = "on" if lib.settings.ocr else "off (VISUALSEARCH_OCR)"
        out.print(f"text     read in {read} picture(s), words found in {worded}; reading while indexing is {state}")
    if change:
        out.print(
            f"pending  {change.to_name}: {change.done}/{change.total} images re-embedded "
            "(run `visualsearch reembed`; `visualsearch serve` does it in the background)"
        )
    for f in info.get("failures", []):
        out.print(f"  {f['id']:>6} {f['source']}: {f['error']}")


def _group_dict(group: DuplicateGroup, number: int) -> dict[str, Any]:
    def member(m: Member) -> dict[str, Any]:
        a = m.asset
        return {
            "id": a.id,
            "source": a.source,
            "name": a.name,
            "width": a.width,
            "height": a.height,
            "byte_size": a.byte_size,
            "added_at": a.added_at.isoformat() if a.added_at else None,
            "similarity": m.similarity,
            "kind": m.kind,
        }

    return {
        "group": number,  # as listed, and as `duplicates --skip` takes it
        "keep": member(group.keeper),
        "keeper_reason": group.keeper_reason or None,
        "others": [member(m) for m in group.others],
    }


#: The tiers of exact copies: what ``duplicates --delete-extras --exact-only`` moves.
EXACT_TIERS = frozenset({"exact_bytes", "same_pixels"})
#: The tiers in words, as the page says them (``--json`` keeps the values: exact_bytes, same_pixels, ...).
TIER_LABEL = {"exact_bytes": "same file", "same_pixels": "same pixels", "near_duplicate": "near-duplicate"}


def _print_groups(groups: Sequence[DuplicateGroup], as_json: bool, label: str, copies: bool = True) -> None:
    """Groups as text. ``copies``: duplicates (one to keep, extras to move away); otherwise look-alike
    groups, where nothing is an extra: the first is only the group's reference picture."""
    if as_json:
        out.print_json(json.dumps([_group_dict(g, n) for n, g in enumerate(groups, 1)]))
        return
    if not groups:
        console.print(f"no {label} found")
        return
    first, rest = ("keep", "extra") if copies else ("main", "alike")
    for n, g in enumerate(groups, 1):
        k = g.keeper.asset
        print(f"group {n} ({g.size} images)")
        print(f"  {first:6} {k.id:>6}  {k.width}x{k.height}  {k.byte_size or 0:>9} B  {k.source}")
        if copies and g.keeper_reason:
            print(f"         kept because: {g.keeper_reason}")
        for m in g.others:
            a = m.asset
            kind = f"{TIER_LABEL.get(m.kind or '', m.kind or ''):14} " if copies else ""
            print(
                f"  {rest:6} {a.id:>6}  {a.width}x{a.height}  {a.byte_size or 0:>9} B  "
                f"{m.similarity:.3f} {kind}{a.source}"
            )


@app.command()
def duplicates(
    library: LibraryOpt = None,
    model: ModelOpt = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Visual similarity from which a pair is checked pixel by pixel as a possible copy "
            "(default 0.78; lower finds more copies that were changed more, and takes longer).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    delete_extras: Annotated[
        bool,
        typer.Option(
            "--delete-extras",
            help="Move every non-keeper to the library's trash folder (asks first; undo with "
            "`visualsearch trash restore BATCH`).",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --delete-extras.")] = False,
    exact_only: Annotated[
        bool,
        typer.Option(
            "--exact-only",
            help="With --delete-extras, move only exact copies (the same file or the same pixels); "
            "near-duplicates stay, to be looked at.",
        ),
    ] = False,
    skip: Annotated[
        list[int] | None,
        typer.Option(
            "--skip",
            metavar="GROUP",
            min=1,
            help="With --delete-extras, leave group GROUP as it is (its number in the listing of the same "
            "library and threshold; repeat for more groups).",
        ),
    ] = None,
) -> None:
    """List exact copies and near-duplicates, with the image to keep in each group. Dry run unless --delete-extras.

    Near-duplicates are the same picture resized, re-encoded, cropped, bannered...; each
    candidate pair is confirmed by its pixels. Different pictures that look alike (colour
    variants, another letter) are in `visualsearch groups`, never here.
    """
    from ..duplicates import DEFAULT_THRESHOLD
    from ..services import DuplicatesService

    lib = _open(library, model)
    service = DuplicatesService(lib)
    groups = _duplicates_with_bar(
        service, DEFAULT_THRESHOLD if threshold is None else threshold, as_json, "checking candidate pairs"
    )
    skipped = sorted(set(skip or ()))
    if skipped and skipped[-1] > len(groups):
        _fail(f"there is no group {skipped[-1]}: this run found {len(groups)} group(s)")
    if not (as_json and delete_extras):  # with both, the JSON report of what moved is the output
        _print_groups(groups, as_json, "duplicates")
    extras = [
        m.asset.id
        for n, g in enumerate(groups, 1)
        if n not in skipped
        for m in g.others
        if not exact_only or m.kind in EXACT_TIERS
    ]
    # Named by their keepers too: numbers hold only for the same library and threshold as the listing.
    kept = ", ".join(f"{n} (keeps #{groups[n - 1].keeper.asset.id})" for n in skipped)
    left = f" (group(s) {kept} left as they are)" if skipped else ""
    if not delete_extras:
        if groups and not as_json:
            console.print(
                f"{len(groups)} group(s), {len(extras)} extra image(s){left}. Dry run: nothing was moved "
                "(use --delete-extras to move the extras to the trash)."
            )
        return
    if not extras:
        return
    if not yes and not typer.confirm(f"Move {len(extras)} extra image(s) to the trash folder{left}?", err=True):
        console.print("Nothing was moved.")
        raise typer.Exit(1)
    try:
        batch, moved = service.trash(extras)
    except VisualSearchError as exc:
        _fail(str(exc))
    if as_json:
        out.print_json(json.dumps({"batch": batch, "moved": [e.__dict__ for e in moved]}))
        return
    console.print(
        f"moved {len(moved)} file(s) to {lib.settings.library_dir / 'trash' / batch}; "
        f"undo with: visualsearch trash restore {batch}"
    )


@app.command()
def groups(
    library: LibraryOpt = None,
    model: ModelOpt = None,
    threshold: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Visual similarity that joins two images (default 0.75).")
    ] = None,
    min_size: Annotated[int, typer.Option(min=2, help="Smallest group to show.")] = 2,
    as_json: JsonOpt = False,
) -> None:
    """Groups of look-alike images (series, the same object from other angles), largest first."""
    from ..duplicates import DEFAULT_GROUP_THRESHOLD
    from ..services import DuplicatesService

    lib = _open(library, model)
    found = [
        g
        for g in DuplicatesService(lib).lookalikes(DEFAULT_GROUP_THRESHOLD if threshold is None else threshold)
        if g.size >= min_size
    ]
    _print_groups(found, as_json, "look-alike groups", copies=False)


trash_app = typer.Typer(no_args_is_help=True, help="See and undo what --delete-extras moved to the trash.")
app.add_typer(trash_app, name="trash")


@trash_app.command("list")
def trash_list(
    library: LibraryOpt = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Also list the files of batches already restored, marked so.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Files in the trash, by batch, newest batch first (restored ones are left out unless --all)."""
    from ..services import DuplicatesService

    batches = DuplicatesService(_open(library)).trash_batches()
    rows = [(b, e, here) for b in batches for e, here in zip(b.files, b.in_trash, strict=True) if here or everything]
    if as_json:
        out.print_json(json.dumps([dict(e.__dict__, in_trash=here) for _, e, here in rows]))
        return
    if not rows:
        restored = sum(1 for b in batches for here in b.in_trash if not here)
        console.print(
            "the trash is empty" + (f" ({restored} file(s) restored earlier; --all lists them)" if restored else "")
        )
    shown = None
    for b, e, here in rows:
        if b.batch != shown:
            shown = b.batch
            when = datetime.fromtimestamp(b.at).strftime("%Y-%m-%d %H:%M")
            left = sum(b.in_trash)
            state = f"{left} of {len(b.files)} file(s) in the trash" if left else "restored"
            print(f"{b.batch}  ({when}, {state})")
        print(f"  {e.asset_id:>6}  {e.original}{'' if here else '  (restored)'}")


@trash_app.command("restore")
def trash_restore(
    batch: Annotated[str, typer.Argument(help="Batch name from `trash list`.")], library: LibraryOpt = None
) -> None:
    """Move a batch's files back where they were, and index them again."""
    from ..services import DuplicatesService

    try:
        restored = DuplicatesService(_open(library)).restore(batch)
    except VisualSearchError as exc:
        _fail(str(exc))
    console.print(f"restored {len(restored)} file(s)")


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on. Anything but loopback requires API keys.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    library: LibraryOpt = None,
    model: ModelOpt = None,
    require_keys: Annotated[
        bool, typer.Option("--require-keys", help="Require API keys even on 127.0.0.1 (automatic once a key exists).")
    ] = False,
    rate_limit: Annotated[
        int | None, typer.Option(min=0, help="Requests per minute per API key (0 = unlimited; default 600).")
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Another host name the server answers to (repeat for several), e.g. the name "
            "of this machine on your network. Loopback names always work.",
        ),
    ] = None,
    folder_root: Annotated[
        list[Path] | None,
        typer.Option(
            "--folder-root",
            help="A folder the API may index, with its subfolders (repeat for several). "
            "Default: your Pictures folder, or $VISUALSEARCH_FOLDER_ROOTS.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the REST API server (FastAPI + uvicorn) on this library."""
    import uvicorn

    from ..api import create_app
    from ..catalog import Catalog
    from ..services import KeyService

    settings = _settings(
        library,
        model=model,
        rate_limit_per_minute=rate_limit,
        bind_host=host,
        folder_roots=tuple(folder_root) if folder_root else None,
    )
    if allowed_host:
        settings.allowed_hosts = (*settings.allowed_hosts, *allowed_host)
    catalog = Catalog(settings.catalog_url)
    keys = KeyService(catalog).active_count()
    catalog.close()
    if keys or require_keys:
        if not keys:
            _fail(
                "--require-keys, but no API key exists yet: create one with "
                "`visualsearch keys create NAME --role admin`"
            )
        console.print(f"API keys required ({keys} active).")
        required = True
    elif _is_loopback(host):
        console.print(
            f"[bold yellow]Local single-user mode:[/] no API key needed, because the server only "
            f"listens on {host}. Create a key with `visualsearch keys create` to require keys."
        )
        required = False
    else:
        _fail(
            f"refusing to listen on {host} without API keys: create one with "
            "`visualsearch keys create NAME --role admin`, or listen on 127.0.0.1"
        )
    console.print(f"library {settings.library_dir}; API docs at http://{host}:{port}/docs")
    console.print("folders the API may index: " + (", ".join(map(str, settings.folder_roots)) or "none"))
    uvicorn.run(create_app(settings, require_keys=required), host=host, port=port, log_level=log_level)


@app.command()
def demo(
    library: Annotated[
        Path | None,
        typer.Option(
            "--library",
            "-L",
            help="Where to build the demo library (default: a `demo` folder next to "
            "your library, so your own library is not touched).",
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port of the page and the API.")] = 8000,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the server on 127.0.0.1 afterwards.")
    ] = True,
) -> None:
    """See it work: index the sample photos that come with visualsearch, then open the page.

    The photos are copied into the demo library's folder and indexed with the default model
    (about a minute the first time); then the server starts on 127.0.0.1. Next, try your own:
    `visualsearch index ~/Pictures` and `visualsearch serve`.
    """
    import shutil

    from ..config import default_library_dir
    from ..demo import photo_files, sample_queries

    demo_library = Path(library).expanduser() if library else default_library_dir().with_name("demo")
    photos = demo_library / "sample-photos"
    photos.mkdir(parents=True, exist_ok=True)
    for source in photo_files():
        if not (photos / source.name).exists():
            shutil.copy2(source, photos / source.name)
    console.print(f"sample photos: {photos}")
    index(photos, library=demo_library, model=None, prune=False, retry_failed=False, as_json=False)
    console.print("try searching for: " + ", ".join(f"[bold]{q}[/]" for q in sample_queries()))
    if not serve_after:
        console.print(f"start the page with `visualsearch serve --library {demo_library}`")
        return
    console.print(f"[bold green]open http://127.0.0.1:{port}/ in your browser[/] (Ctrl-C stops the server)")
    serve(
        host="127.0.0.1",
        port=port,
        library=demo_library,
        model=None,
        require_keys=False,
        rate_limit=None,
        allowed_host=None,
        folder_root=[photos],
        log_level="warning",
    )


keys_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys for `visualsearch serve`.")
app.add_typer(keys_app, name="keys")


def _key_store(library: Path | None) -> KeyService:
    from ..catalog import Catalog
    from ..services import KeyService

    settings = _settings(library)
    return KeyService(Catalog(settings.catalog_url))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what will use the key.")],
    role: Annotated[
        str, typer.Option(help="read (search, view) or admin (also upload, delete, folders, keys).")
    ] = "read",
    library: LibraryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key. Its secret is printed once: store it now."""
    try:
        info, secret = _key_store(library).create(name, role)
    except VisualSearchError as exc:
        _fail(str(exc))
    if as_json:
        out.print_json(json.dumps({"id": info.id, "name": info.name, "role": info.role, "key": secret}))
        return
    console.print(f"created {info.role} key {info.id} ({info.name}); it is shown only this once:")
    print(secret)


@keys_app.command("list")
def keys_list(
    library: LibraryOpt = None,
    as_json: JsonOpt = False,
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List keys (never their secrets)."""
    rows = _key_store(library).list(include_revoked=all_keys)
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        "id": k.id,
                        "name": k.name,
                        "role": k.role,
                        "prefix": k.prefix,
                        "created_at": k.created_at.isoformat(),
                        "revoked": k.revoked,
                    }
                    for k in rows
                ]
            )
        )
        return
    if not rows:
        console.print("no keys: the server runs in local single-user mode on 127.0.0.1")
    for k in rows:
        out.print(f"{k.id:>4}  {k.role:5}  {k.prefix}...  {k.name}{'  (revoked)' if k.revoked else ''}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="Key id from `keys list`.")], library: LibraryOpt = None
) -> None:
    """Revoke a key: it stops working at once."""
    try:
        info = _key_store(library).revoke(key_id)
    except VisualSearchError as exc:
        _fail(str(exc))
    console.print(f"revoked key {info.id} ({info.name})")


models_app = typer.Typer(
    no_args_is_help=True,
    help="Choose the embedding model: list the curated ones, download and switch to one, remove one.",
)
app.add_typer(models_app, name="models")


def _model_service(library: Path | None) -> Any:
    from ..services import ModelService

    return ModelService(_open(library))


def _model_json(m: ModelInfo) -> dict[str, Any]:
    return dict(m.__dict__)


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


@models_app.command("list")
def models_list(library: LibraryOpt = None, as_json: JsonOpt = False) -> None:
    """The curated models: size, languages, published retrieval, measured speed, and which one is in use."""
    service = _model_service(library)
    rows = service.list()
    if as_json:
        out.print_json(json.dumps([_model_json(m) for m in rows]))
        return

    table = Table(
        title="Models (text->image R@1 %, COCO 5k / Flickr30k 1k, as published)",
        box=None,
        pad_edge=False,
        padding=(0, 1),
    )
    for column in ("name", "dim", "MB", "lang", "COCO", "F30k", "img/s", "status"):
        table.add_column(column, no_wrap=column in ("name", "status"))
    for m in rows:
        if m.active and m.requested:
            here = "[green]in use[/]"
        elif m.requested:
            here = "[yellow]moving to it[/]"
        elif m.active:
            here = "in use (leaving)"
        elif m.installed:
            here = "downloaded"
        elif m.partial_bytes:
            here = f"partial, {_mb(m.partial_bytes)}"
        else:
            here = "-"
        table.add_row(
            m.name,
            str(m.dim),
            "bundled" if m.repo is None else f"{m.download_mb:,}",
            "multi" if m.languages.startswith("multi") else "en",
            "-" if m.coco_r1 is None else f"{m.coco_r1:.1f}",
            "-" if m.flickr_r1 is None else f"{m.flickr_r1:.1f}",
            "-" if m.images_per_s is None else f"{m.images_per_s:.0f}",
            here,
        )
    out.print(table)
    for m in rows:
        note = f"  {m.name}: {m.family}; {m.pick}; figures: {m.source}"
        console.print(note + (f"; licence {m.licence}" if m.licence else ""))
    console.print(
        "images/s: measured with benchmarks/models.py on 2 CPU cores (each architecture at its real size). "
        f"Downloads go to {service.store}."
    )
    console.print("Switch with `visualsearch models use NAME`; searches keep working while the library re-embeds.")


@models_app.command("use")
def models_use(
    name: Annotated[str, typer.Argument(help="A name from `visualsearch models list`.")],
    library: LibraryOpt = None,
    reembed_now: Annotated[
        bool,
        typer.Option(
            "--reembed/--no-reembed",
            help="Re-embed the library now, with a progress bar (default); or leave it to `visualsearch serve`.",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Download a model (resumable: run it again after an interruption), then move the library onto it.

    Searches keep using the current model until every image has a vector from the new one.
    """
    from rich.progress import DownloadColumn, TransferSpeedColumn

    from ..models.hub import ModelDownloadError

    service = _model_service(library)
    try:
        fetch = service.needs_download(name)
    except VisualSearchError as exc:
        _fail(str(exc))
    progress = Progress(
        TextColumn("[bold]downloading {task.fields[model]}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=as_json or not fetch,
    )
    task = progress.add_task("download", total=None, model=name)
    try:
        with progress:
            info = service.use(name, lambda done, total, _f: progress.update(task, completed=done, total=total))
    except KeyboardInterrupt:
        console.print(f"\ninterrupted: what was downloaded is kept; run `visualsearch models use {name}` to resume")
        raise typer.Exit(130) from None
    except (ModelDownloadError, VisualSearchError) as exc:
        _fail(str(exc))
    lib = service.library
    if not as_json:
        console.print(f"{name} is {'downloaded and is ' if fetch else ''}now the library's model")
    report = _reembed(lib, as_json) if reembed_now else None
    if as_json:
        out.print_json(json.dumps({"model": _model_json(info), "reembed": report.__dict__ if report else None}))
        return
    if report is not None:
        _reembed_summary(lib, report)
    elif lib.model_change() is not None:
        console.print("searches use the previous model until `visualsearch reembed` (or `serve`) has moved every image")


@models_app.command("remove")
def models_remove(
    name: Annotated[str, typer.Argument(help="A downloaded model from `visualsearch models list`.")],
    library: LibraryOpt = None,
) -> None:
    """Delete a downloaded model's files (not the one the library uses)."""
    service = _model_service(library)
    try:
        removed = service.remove(name)
    except VisualSearchError as exc:
        _fail(str(exc))
    console.print(f"removed {name}" if removed else f"{name} was not downloaded")


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()  # exits with the command's status (typer calls sys.exit)
