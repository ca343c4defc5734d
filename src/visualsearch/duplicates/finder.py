"""Find copies and look-alikes without comparing everything with everything.

Candidates come from the vector index: every image asks the index for its
nearest neighbours (exact blocked matrix products for small libraries, HNSW
batch queries above the ANN threshold), so the work grows as n x k, not n^2.
Exact copies come from the catalog (same bytes: sha256; same pixels: a digest
of the decoded pixels). Pairs are joined into groups with SciPy's
connected-components on a sparse graph.

A pair of images is a **near-duplicate** when the cosine similarity of their
visual vectors (the backbone's pooled features) is at least ``threshold``, or
at least ``threshold - PHASH_RELIEF`` while their perceptual hashes are within
``PHASH_BITS`` bits: the hash confirms a copy that a colour shift or re-encode
pushed just under the threshold, which same-class photos that are not copies
rarely have. Pairs whose hashes are within ``PHASH_STRONG_BITS`` bits (found by
hash bucketing, not pairwise) count too, as long as their vectors are not far
apart: grayscale copies move the vectors but not the hash. Defaults were chosen
with ``benchmarks/duplicates.py``.

Every candidate pair that is not an exact copy is then **verified by its
pixels** (:mod:`.verify`): the two pictures are aligned and compared in colour,
and pairs that turn out to be different pictures of similar appearance
(look-alikes: colour variants, another letter or hour, light and dark versions)
are dropped. Groups are the connected components of the confirmed pairs only, so
a chain of look-alikes cannot join two copies' groups; a single confirmed link
that the check contradicts across (:func:`_cut_bridges`) cannot either.

**Keeper** of a group (the one to keep, by this rule): the largest resolution
(width x height); between copies of the same size, the least compressed file
(more bytes than every same-size copy with other pixels, by over ``COMPRESSION_MARGIN``);
then the oldest (file modification time or time added, whichever is earlier);
then the smallest id. Each group says why its keeper won (``keeper_reason``).
"""

from __future__ import annotations

import heapq
import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..catalog import Asset, Catalog
from ..index import ExactIndex, IndexBackend
from ..ingest.decode import DecodedImage
from ..ingest.fingerprint import hamming_many
from .verify import PixelVerifier, prepare

#: Cosine similarity of visual vectors at or above which a pair is a near-duplicate candidate
#: (confirmed or rejected by the pixel check). 0.80 rather than 0.85 since the check carries
#: precision: synthetic-set recall 0.896 -> 0.949 at precision 1.000; real-set pair precision
#: 0.749 -> 0.74 and 45% more pairs to check (benchmarks/duplicates.py). 0.78 (and PHASH_RELIEF
#: 0.15, was 0.10) since the check decides: on the real set, three more copies (aspect versions of
#: boot backgrounds, which the model sees at 0.65-0.80) for 16% more pairs to check and no more false
#: pairs; 0.77 joined another wallpaper's plain background to its grub versions (4 false pairs).
#: Synthetic set: recall 0.968 -> 0.974, precision 1.000. Chosen on those sets (dev sets).
DEFAULT_THRESHOLD = 0.78
#: With perceptual hashes within PHASH_BITS bits, the threshold is lowered by this much.
PHASH_RELIEF = 0.15
PHASH_BITS = 12
#: Perceptual hashes this close make a pair a candidate on their own (with a sanity floor on the
#: visual similarity; the pixel check decides): grayscale and strong colour changes move the
#: vectors, not the hash. The model sees small icons poorly: two identical 60 px stars of the real
#: set hash 2 bits apart at cosine 0.499, so the floor went from 0.5 to 0.4 (36 more candidate
#: pairs of 6,170 there, 72 of 17,804 on the synthetic set; 2 more copies found, no verdict lost;
#: no floor at all: 96 more, no more copies).
PHASH_STRONG_BITS = 4
PHASH_STRONG_FLOOR = 0.4
#: Hash buckets bigger than this are skipped (flat or blank images share hashes without being copies).
MAX_BUCKET = 200
#: Default similarity for look-alike groups (photo series, the same object from other angles).
DEFAULT_GROUP_THRESHOLD = 0.75
#: Neighbours asked of the index per image, and the HNSW search breadth for that.
NEIGHBOURS = 10
DUPLICATE_EF = 32

#: Threads for the pixel check of candidate pairs.
CHECK_THREADS = max(1, min(4, os.cpu_count() or 1))
#: Verdicts are written to the store every this many checked pairs, so a first run that is stopped
#: (Ctrl-C, a server restart) keeps what it checked and the next run carries on from there.
FLUSH_EVERY = 500
#: Pairs handed to the pool at a time (a stop waits for at most one chunk).
CHECK_CHUNK = 64


class CheckStopped(Exception):
    """A duplicates run stopped by its ``stop`` callback (the server shutting down): its verdicts are kept."""


#: Between copies of the same size, a file this much larger per pixel counts as less compressed.
COMPRESSION_MARGIN = 0.05

EXACT_BYTES, SAME_PIXELS, NEAR = "exact_bytes", "same_pixels", "near_duplicate"
LOOKALIKE = "lookalike"


@dataclass
class Member:
    asset: Asset
    #: Cosine similarity to the group's keeper (1.0 for the keeper itself).
    similarity: float
    #: How it matches the keeper: exact_bytes, same_pixels, near_duplicate or lookalike; None for the keeper.
    kind: str | None


@dataclass
class DuplicateGroup:
    keeper: Member
    others: list[Member] = field(default_factory=list)
    #: Why the keeper was chosen, in words ("largest: 1920×1080", "same size; least compressed").
    keeper_reason: str = ""

    @property
    def size(self) -> int:
        return 1 + len(self.others)

    @property
    def asset_ids(self) -> list[int]:
        return [self.keeper.asset.id] + [m.asset.id for m in self.others]


def _age(asset: Asset) -> float:
    """The earlier of the file's modification time (for files indexed in place: usually when the
    photo was taken or saved) and when it was added."""
    added = asset.added_at
    when = float("inf")
    if added is not None:
        when = (added if added.tzinfo else added.replace(tzinfo=UTC)).timestamp()
    if asset.mtime is not None:
        when = min(when, asset.mtime)
    return when


def _pixels(asset: Asset) -> int:
    return (asset.width or 0) * (asset.height or 0)


def _less_compressed(a: Asset, b: Asset) -> bool:
    """``a`` keeps clearly more bytes than ``b`` for the same pixels (a lighter JPEG, a lossless save)."""
    return (a.byte_size or 0) > (b.byte_size or 0) * (1 + COMPRESSION_MARGIN)


def keeper_order(asset: Asset) -> tuple[int, float, int, int]:
    """Sort key by resolution, then age, then file size: see :func:`choose_keeper` for the full rule."""
    return (-_pixels(asset), _age(asset), -(asset.byte_size or 0), asset.id)


def choose_keeper(members: list[Asset]) -> tuple[Asset, str]:
    """The asset to keep among copies, and why in words.

    Largest resolution; among the largest, the least compressed file (clearly more bytes
    than every same-size copy with other pixels); then the oldest; then the smallest id.
    """
    ranked = sorted(members, key=keeper_order)
    top = [m for m in ranked if _pixels(m) == _pixels(ranked[0])]
    size = f"{ranked[0].width or '?'}×{ranked[0].height or '?'}"
    if len(top) == 1:
        second = ranked[1]
        return top[0], f"largest: {size} (the next is {second.width or '?'}×{second.height or '?'})"
    reason = f"all the same size, {size}" if len(top) == len(ranked) else f"{len(top)} at the largest size, {size}"
    # Less compressed only counts against copies with other pixels: a lossless re-save of a
    # JPEG is larger but no better, so pixel-identical files fall back to age.
    heaviest = max(top, key=lambda m: (m.byte_size or 0, -m.id))
    rivals = [m for m in top if m is not heaviest and exact_kind(m, heaviest) is None]
    if rivals and all(_less_compressed(heaviest, m) for m in rivals):
        twins = [m for m in top if m not in rivals]
        keeper = min(twins, key=lambda m: (_age(m), m.id))
        lighter = max(m.byte_size or 0 for m in rivals)
        return keeper, f"{reason}; least compressed ({_mb(keeper.byte_size)} vs {_mb(lighter)})"
    keeper = top[0]
    others = [m for m in top if m is not keeper]
    age_of = _age(keeper)
    when = datetime.fromtimestamp(age_of, UTC).strftime("%Y-%m-%d") if math.isfinite(age_of) else "date unknown"
    same_age = [m for m in others if _age(m) == age_of]
    if not same_age:
        return keeper, f"{reason}; oldest ({when})"
    # Some are as old: keeper_order took the larger file among those, then the lowest id. Say
    # which decided, and among which (it said "lowest id" where newer files had lower ids).
    if len(same_age) < len(others):
        age, among = f"oldest ({when}, {len(same_age)} other(s) as old)", "of those, "
    else:
        age, among = "as old as the others", ""
    lighter = max(m.byte_size or 0 for m in same_age)
    if (keeper.byte_size or 0) > lighter:
        return keeper, f"{reason}; {age}; {among}larger file ({_mb(keeper.byte_size)} vs {_mb(lighter)})"
    return keeper, f"{reason}; {age}; {among}same file size, lowest id"


def _mb(n: int | None) -> str:
    """A file size that tells close sizes apart: bytes under 10 kB, one decimal up to 100 kB."""
    n = n or 0
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e5:
        return f"{n / 1e3:.0f} kB"
    return f"{n / 1e3:.1f} kB" if n >= 1e4 else f"{n:,} bytes"


def _neighbours(manager: IndexBackend, k: int) -> tuple[ExactIndex, np.ndarray, np.ndarray]:
    """(exact index, neighbour ids [n, k+1], scores [n, k+1]) for every vector of the similarity space."""
    exact = manager.exact()
    if len(exact) == 0:
        return exact, np.empty((0, k + 1), np.int64), np.empty((0, k + 1), np.float32)
    # +1: each image finds itself. Copies are very near neighbours, which a narrow HNSW
    # search finds (ef=32: all planted copies among 10,000 clustered vectors, 0.25 ms each).
    ids, scores = manager.index().search_many(exact.vectors, k + 1, ef=DUPLICATE_EF)
    return exact, ids, scores


def _pairs(
    exact: ExactIndex, nbr_ids: np.ndarray, nbr_scores: np.ndarray, min_score: float, mutual: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, score) per neighbour pair scoring >= min_score, each pair once with a < b.

    ``mutual``: keep a pair only when each image is among the other's neighbours.
    """
    a = np.repeat(exact.ids, nbr_ids.shape[1])
    b = nbr_ids.ravel()
    s = nbr_scores.ravel()
    keep = (b >= 0) & (a != b) & (s >= min_score)
    a, b, s = a[keep], b[keep], s[keep]
    if len(a) == 0:
        return a, b, s
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs, first, counts = np.unique(np.stack([lo, hi], axis=1), axis=0, return_index=True, return_counts=True)
    if mutual:
        pairs, first = pairs[counts >= 2], first[counts >= 2]
    return pairs[:, 0], pairs[:, 1], s[first]


def _components(a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Groups (arrays of asset ids, size >= 2) of the graph with these edges."""
    if len(a) == 0:
        return []
    nodes = np.unique(np.concatenate([a, b]))
    pos = {int(i): p for p, i in enumerate(nodes)}
    rows = np.fromiter((pos[int(i)] for i in a), np.int64, len(a))
    cols = np.fromiter((pos[int(i)] for i in b), np.int64, len(b))
    graph = coo_matrix((np.ones(len(a), np.int8), (rows, cols)), shape=(len(nodes), len(nodes)))
    count, labels = connected_components(graph, directed=False)
    order = np.argsort(labels, kind="stable")
    splits = np.flatnonzero(np.diff(labels[order])) + 1
    return [nodes[g] for g in np.split(order, splits) if len(g) > 1]


def _stars(a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Groups of the graph with these edges, each a centre and its neighbours (centre first).

    Connected components chain: on the real set a mutual-neighbour chain of flags, arrow buttons
    and icons made one "look-alike" group of 923 pictures. Here the picture with the most links
    left takes all its neighbours not yet taken, and so on, so every member of a group is linked
    to its first picture (its reference) itself.
    """
    links: dict[int, set[int]] = {}
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        links.setdefault(x, set()).add(y)
        links.setdefault(y, set()).add(x)
    heap = [(-len(n), node) for node, n in links.items()]
    heapq.heapify(heap)
    taken: set[int] = set()
    groups = []
    while heap:
        degree, node = heapq.heappop(heap)
        if node in taken:
            continue
        free = links[node] - taken
        if len(free) != -degree:  # links were taken since it was queued: queue it with what is left
            if free:
                heapq.heappush(heap, (-len(free), node))
            continue
        members = [node, *sorted(free)]
        taken.update(members)
        groups.append(np.asarray(members, np.int64))
    return groups


#: Components bigger than this are not searched for links to cut (the search is quadratic in its size),
#: and at most this many of a group's bridges are tried (every subset of them is).
MAX_SPLIT = 500
MAX_BRIDGES = 6


def _cut_bridges(
    a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray, rejected: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """The confirmed pairs (a, b) without the links that alone hold two groups together against the check.

    Confirmed pairs are not transitive: on the real set a blurred 32 px star passed as a copy of the
    sharp 64 px one (at 32 px the two look alike), which joined the blurred star's group and the
    sharp star's into one, and made 4 false pairs, while the check had rejected the 3 other pairs
    between them. So a link is cut when it is the only one between two sides of two pictures or more
    each (a bridge) and the check rejected at least two pairs across it. Exact copies (``fa, fb``) are
    never cut. A wrong cut shows a group of copies as two groups: each keeps its own file.
    """
    edges = {(min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist(), strict=True)}
    if not rejected or not edges:
        return a, b
    fixed = {(min(x, y), max(x, y)) for x, y in zip(fa.tolist(), fb.tolist(), strict=True)}
    # Each rejected pair, exact copy and link goes to its group in one pass (a big library has
    # thousands of groups and of rejected pairs).
    group_of: dict[int, int] = {}
    groups = _components(np.concatenate([a, fa]), np.concatenate([b, fb]))
    for n, ids in enumerate(groups):
        group_of.update(dict.fromkeys(ids.tolist(), n))

    def by_group(pairs: Iterable[tuple[int, int]]) -> dict[int, list[tuple[int, int]]]:
        out: dict[int, list[tuple[int, int]]] = {}
        for x, y in pairs:
            g = group_of.get(x)
            if g is not None and g == group_of.get(y):
                out.setdefault(g, []).append((x, y))
        return out

    inner, exact, links = by_group(rejected), by_group(fixed), by_group(edges - fixed)  # an exact copy is no cut
    for g, against in inner.items():
        if len(against) >= 2 and len(groups[g]) <= MAX_SPLIT and links.get(g):
            edges -= _bridges_to_cut(set(groups[g].tolist()), set(links[g]), exact.get(g, []), against)
    kept = np.array(sorted(edges), np.int64).reshape(-1, 2)
    return kept[:, 0], kept[:, 1]


def _bridges_to_cut(
    nodes: set[int], edges: set[tuple[int, int]], fixed: list[tuple[int, int]], rejected: list[tuple[int, int]]
) -> set[tuple[int, int]]:
    """The links of one group that :func:`_cut_bridges` cuts: of its bridges with two pictures or more on
    each side, the set that leaves the fewest contradictions (a link cut, or a rejected pair left inside
    one part, counts one), every part keeping two pictures or more; none unless that is fewer than
    the rejected pairs inside the group as it is."""
    links: dict[int, set[int]] = {n: set() for n in nodes}
    for x, y in [*edges, *fixed]:
        links[x].add(y)
        links[y].add(x)

    def reach(start: int, without: set[frozenset[int]]) -> set[int]:
        seen, stack = {start}, [start]
        while stack:
            node = stack.pop()
            for nxt in links[node]:
                if nxt not in seen and frozenset((node, nxt)) not in without:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    bridges: list[tuple[int, tuple[int, int]]] = []
    for x, y in sorted(edges):
        side = reach(x, {frozenset((x, y))})
        if y not in side and len(side) >= 2 and len(nodes) - len(side) >= 2:
            bridges.append((sum((p in side) != (q in side) for p, q in rejected), (x, y)))
    bridges = sorted(bridges, reverse=True)[:MAX_BRIDGES]  # the most contradicted, if there are many
    best: tuple[int, tuple[tuple[int, int], ...]] = (len(rejected), ())
    for r in range(1, len(bridges) + 1):
        for chosen in combinations([e for _, e in bridges], r):
            without = {frozenset(e) for e in chosen}
            part_of: dict[int, int] = {}
            for node in nodes:
                if node not in part_of:
                    part = reach(node, without)
                    if len(part) < 2:
                        break
                    part_of.update(dict.fromkeys(part, node))
            else:
                cost = r + sum(part_of[p] == part_of[q] for p, q in rejected)
                if cost < best[0]:
                    best = (cost, chosen)
    return set(best[1])


def _exact_edges(assets: dict[int, Asset], attr: str) -> tuple[np.ndarray, np.ndarray]:
    buckets: dict[str, list[int]] = {}
    for asset in assets.values():
        key = getattr(asset, attr)
        if key:
            buckets.setdefault(key, []).append(asset.id)
    a, b = [], []
    for ids in buckets.values():
        for other in ids[1:]:
            a.append(ids[0])
            b.append(other)
    return np.asarray(a, np.int64), np.asarray(b, np.int64)


def _cosine(exact: ExactIndex, x: int, y: int) -> float:
    rows = exact.rows_of(np.array(sorted({x, y}), np.int64))
    if len(rows) < 2:
        return 1.0 if x == y else float("nan")
    v = np.asarray(exact.vectors[rows], dtype=np.float32)
    return float(v[0] @ v[1])


def _build_groups(
    components: list[np.ndarray],
    assets: dict[int, Asset],
    exact: ExactIndex,
    kind_of: Callable[[Asset, Asset], str],
    first_is_reference: bool = False,
) -> list[DuplicateGroup]:
    """``first_is_reference``: each component's first id heads its group (look-alikes); otherwise
    the group's keeper by ``choose_keeper``."""
    groups = []
    for ids in components:
        members = [assets[int(i)] for i in ids if int(i) in assets]
        if len(members) < 2:
            continue
        keeper, reason = (members[0], "") if first_is_reference else choose_keeper(members)
        group = DuplicateGroup(Member(keeper, 1.0, None), keeper_reason=reason)
        for other in members:
            if other is not keeper:
                sim = round(_cosine(exact, keeper.id, other.id), 6)
                group.others.append(Member(other, sim, kind_of(keeper, other)))
        group.others.sort(key=lambda m: (-m.similarity, m.asset.id))
        groups.append(group)
    groups.sort(key=lambda g: (-g.size, g.keeper.asset.id))
    return groups


def _phash_close(assets: dict[int, Asset], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    def hashes(ids: np.ndarray) -> np.ndarray:
        phashes = [assets[i].phash if i in assets else None for i in ids.tolist()]
        return np.array([int(h, 16) if h else 0 for h in phashes], dtype=np.uint64)

    def known(ids: np.ndarray) -> np.ndarray:
        return np.array([i in assets and informative(assets[i].phash) for i in ids.tolist()], dtype=bool)

    close: np.ndarray = known(a) & known(b) & (hamming_many(hashes(a), hashes(b)) <= PHASH_BITS)
    return close


def informative(phash: str | None) -> bool:
    """pHash sets about half its bits (it thresholds at the median); flat or blank images do not,
    and their hashes say nothing, so they are never used as evidence."""
    if not phash:
        return False
    return 16 <= int(phash, 16).bit_count() <= 48


def _hash_pairs(assets: dict[int, Asset], exact: ExactIndex) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose perceptual hashes differ in at most PHASH_STRONG_BITS bits, by hash bucketing.

    The 64 bits are cut into PHASH_STRONG_BITS + 1 bands; two hashes that close agree
    exactly on at least one band (pigeonhole), so only same-bucket pairs are compared.
    """
    phashes = {i: a.phash for i, a in assets.items() if a.phash is not None and informative(a.phash)}
    ids = np.array(list(phashes), dtype=np.int64)
    if len(ids) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    hashes = np.array([int(h, 16) for h in phashes.values()], dtype=np.uint64)
    bands = PHASH_STRONG_BITS + 1
    width = -(-64 // bands)
    found: set[tuple[int, int]] = set()
    for band in range(bands):
        shift = np.uint64(band * width)
        mask = np.uint64((1 << min(width, 64 - band * width)) - 1)
        keys = (hashes >> shift) & mask
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for start, end in zip(starts, ends, strict=True):
            if 2 <= end - start <= MAX_BUCKET:
                members = order[start:end]
                for x in range(len(members)):
                    for y in range(x + 1, len(members)):
                        i, j = members[x], members[y]
                        if (int(hashes[i]) ^ int(hashes[j])).bit_count() <= PHASH_STRONG_BITS:
                            found.add((int(min(ids[i], ids[j])), int(max(ids[i], ids[j]))))
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pairs = np.array(sorted(found), dtype=np.int64)
    keep = np.array([_cosine(exact, int(x), int(y)) >= PHASH_STRONG_FLOOR for x, y in pairs], dtype=bool)
    return pairs[keep, 0], pairs[keep, 1]


def exact_kind(x: Asset, y: Asset) -> str | None:
    """EXACT_BYTES or SAME_PIXELS when the two are exact copies; None otherwise."""
    if x.sha256 and x.sha256 == y.sha256:
        return EXACT_BYTES
    if x.pixel_sha256 and x.pixel_sha256 == y.pixel_sha256:
        return SAME_PIXELS
    return None


def _confirmed(x: Asset | None, y: Asset | None, verifier: PixelVerifier) -> bool:
    """An exact copy (same bytes or pixels), or a candidate that passes the pixel check."""
    if x is None or y is None:
        return False
    return exact_kind(x, y) is not None or verifier.verdict(x, y).same


def _candidates(
    assets: dict[int, Asset], index: IndexBackend, threshold: float, k: int
) -> tuple[ExactIndex, np.ndarray, np.ndarray]:
    """(exact index, a, b): the candidate pairs of copies, before the pixel check. Neighbours at
    ``threshold`` (or just under it with close perceptual hashes), and pairs of close hashes."""
    exact, nbr_ids, nbr_scores = _neighbours(index, k)
    a, b, s = _pairs(exact, nbr_ids, nbr_scores, threshold - PHASH_RELIEF)
    if len(a):
        near = (s >= threshold) | _phash_close(assets, a, b)
        a, b = a[near], b[near]
    ha, hb = _hash_pairs(assets, exact)
    a, b = np.concatenate([a, ha]), np.concatenate([b, hb])
    if len(a):  # a pair of neighbours with close hashes is found both ways: check it once
        a, b = np.unique(np.stack([a, b], axis=1), axis=0).T
    return exact, a, b


def candidate_pairs(
    catalog: Catalog, index: IndexBackend, threshold: float = DEFAULT_THRESHOLD, k: int = NEIGHBOURS
) -> list[tuple[int, int]]:
    """The asset id pairs the pixel check would look at (exact copies among them too): what a
    duplicates run costs depends on how many there are (``benchmarks/duplicates.py``)."""
    _, a, b = _candidates(catalog.indexed_assets(), index, threshold, k)
    return list(zip(a.tolist(), b.tolist(), strict=True))


def find_duplicates(
    catalog: Catalog,
    index: IndexBackend,
    threshold: float = DEFAULT_THRESHOLD,
    k: int = NEIGHBOURS,
    verifier: PixelVerifier | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[DuplicateGroup]:
    """Groups of copies: identical bytes, identical pixels, and near-duplicates.

    ``index`` is the similarity space's index of the active model. Pairs at
    ``threshold`` (or just under it with close perceptual hashes) are candidates;
    with a ``verifier``, each candidate that is not an exact copy
    must also pass the pixel check. Without one, candidates are taken as they are
    (the behaviour before verification existed; kept for tests of the candidate stage).
    ``progress(done, total)`` is called as candidate pairs are checked; ``stop()`` is asked between
    chunks of them, and True raises :class:`CheckStopped`.
    """
    assets = catalog.indexed_assets()
    exact, a, b = _candidates(assets, index, threshold, k)
    ea, eb = _exact_edges(assets, "sha256")
    pa, pb = _exact_edges(assets, "pixel_sha256")

    if verifier is not None and len(a):
        keep = np.zeros(len(a), dtype=bool)
        pairs = list(zip(a.tolist(), b.tolist(), strict=True))
        if progress is not None:
            progress(0, len(pairs))  # the total is known now: a long first run says so from the start

        def check(pair: tuple[int, int]) -> bool:
            return _confirmed(assets.get(pair[0]), assets.get(pair[1]), verifier)

        # OpenCV and most numpy work release the GIL: two threads use both cores of a small machine.
        # A chunk at a time, so that a stop (Ctrl-C, a server shutting down) waits for one chunk,
        # not for every pair handed to the pool.
        with ThreadPoolExecutor(max_workers=CHECK_THREADS) as pool:
            try:
                for start in range(0, len(pairs), CHECK_CHUNK):
                    if stop is not None and stop():
                        raise CheckStopped("the duplicates check was stopped")
                    chunk = pairs[start : start + CHECK_CHUNK]
                    keep[start : start + len(chunk)] = list(pool.map(check, chunk))
                    done = start + len(chunk)
                    if done // FLUSH_EVERY > start // FLUSH_EVERY:
                        verifier.flush()
                    if progress is not None:
                        progress(done, len(pairs))
            finally:  # stopped too: what was checked is kept
                verifier.flush()
        rejected = list(zip(a[~keep].tolist(), b[~keep].tolist(), strict=True))
        a, b = a[keep], b[keep]
        a, b = _cut_bridges(a, b, np.concatenate([ea, pa]), np.concatenate([eb, pb]), rejected)

    components = _components(np.concatenate([a, ea, pa]), np.concatenate([b, eb, pb]))
    return _build_groups(components, assets, exact, lambda keeper, other: exact_kind(keeper, other) or NEAR)


def find_lookalikes(
    catalog: Catalog,
    index: IndexBackend,
    threshold: float = DEFAULT_GROUP_THRESHOLD,
    k: int = NEIGHBOURS,
    copies: list[DuplicateGroup] | None = None,
) -> list[DuplicateGroup]:
    """Clusters of visually similar but *different* pictures, joined through *mutual* neighbours.

    Requiring both images to have each other among their ``k`` nearest, and every member to be
    linked to its group's reference (``_stars``), keeps a chain of slightly similar pictures
    from merging into one huge group. Copies
    are not look-alikes: the extras of the ``copies`` groups (the duplicates found
    for this library) are left out, so each picture appears once, as its keeper.
    """
    assets = catalog.indexed_assets()
    exact, nbr_ids, nbr_scores = _neighbours(index, k)
    a, b, _ = _pairs(exact, nbr_ids, nbr_scores, threshold, mutual=True)
    keeper_of = {m.asset.id: g.keeper.asset.id for g in copies or [] for m in g.others}
    if len(a) and keeper_of:
        # An extra's links count as its keeper's, so two pictures joined only through a copy stay joined.
        a = np.array([keeper_of.get(int(x), int(x)) for x in a], np.int64)
        b = np.array([keeper_of.get(int(x), int(x)) for x in b], np.int64)
        keep = a != b
        a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    # Nothing is kept or moved in a look-alike group: its first picture is only the reference.
    return _build_groups(_stars(a, b), assets, exact, lambda keeper, other: LOOKALIKE, first_is_reference=True)


@dataclass
class Match:
    asset: Asset
    similarity: float
    kind: str


def matches_for(
    catalog: Catalog,
    index: IndexBackend,
    decoded: DecodedImage,
    vector: np.ndarray | None,
    threshold: float = DEFAULT_THRESHOLD,
    limit: int = 5,
    verifier: PixelVerifier | None = None,
) -> list[Match]:
    """Images already in the library that ``decoded`` (not yet added) copies: exact, same pixels, or near.

    With a ``verifier``, near candidates must also pass the pixel check. The picture is prepared with
    the original's size (decoding shrinks big pictures), as the library's side is.
    """
    sha256, pixel_sha256, phash = decoded.sha256, decoded.pixel_sha256, decoded.phash
    found: dict[int, Match] = {}
    same_bytes = catalog.find_by_sha256(sha256)
    if same_bytes is not None:
        found[same_bytes.id] = Match(same_bytes, 1.0, EXACT_BYTES)
    if pixel_sha256:
        for twin in catalog.find_by_pixels(pixel_sha256):
            found.setdefault(twin.id, Match(twin, 1.0, SAME_PIXELS))
    if vector is not None:
        hits = index.search(vector, limit)
        candidates = catalog.get_many(hits.ids.tolist())
        query = prepare(decoded.image, frame=(decoded.width, decoded.height)) if verifier is not None else None
        for asset_id, score in zip(hits.ids.tolist(), hits.scores.tolist(), strict=True):
            asset = candidates.get(asset_id)
            if asset is None or asset_id in found or score < threshold - PHASH_RELIEF:
                continue
            close = (
                phash is not None
                and asset.phash is not None
                and informative(phash)
                and informative(asset.phash)
                and (int(phash, 16) ^ int(asset.phash, 16)).bit_count() <= PHASH_BITS
            )
            if not (score >= threshold or close):
                continue
            if verifier is not None and query is not None and not verifier.verdict(query, asset).same:
                continue
            found[asset_id] = Match(asset, round(float(score), 6), NEAR)
    order = {EXACT_BYTES: 0, SAME_PIXELS: 1, NEAR: 2}
    return sorted(found.values(), key=lambda m: (order[m.kind], -m.similarity, m.asset.id))[:limit]
