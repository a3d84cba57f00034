"""Incremental exports: a daily export costs what changed in the catalog, not the catalog.

The shards of the `parquet`, `jsonl`, `webdataset` and `hf` formats hold fixed ranges of
added_seq (the number a post gets when the catalog first holds it with its image; later posts
get higher ones). Rows are ordered by added_seq, so new posts come last. The manifest records
each shard's range `[lo, hi]` (the ranges tile 0 .. `through`, the last added_seq the catalog
had given), with the posts it selected, left out and holds per bucket; and, under
`incremental`, the catalog's change number when the export read it and a digest of everything
that shapes a shard's content (head, calibration, caption rules, filter, format, shard size,
image root, command...).

A later export whose shaping digest is the same asks the catalog (sql/captions/changes.sql)
for the added_seq of every post whose row may differ since that change number: posts written
or changed since, posts that left, scores of the active head written or ranked again since,
and every post of an image one of those shows (an export holds one post per image). Only the
shards whose ranges hold one are selected, located, captioned and encoded again; posts
numbered after `through` go to the last shard while it has room, then to new shards. The
other shards, and their manifest entries, are kept as they are. A shard rebuilt may hold
fewer rows than the shard size (posts left or were filtered out); one that would hold more is
cut, its further pieces taking new indexes; one left empty is dropped, its range joining the
shard before it. Anything else (another shaping digest, a manifest written before this, a
catalog that records no changes, a kohya format, a missing shard file) means a whole export,
cut afresh.

What the catalog does not record is not seen: an image moved, replaced or gone from the
image index keeps its rows in shards not rebuilt; and dropped_posts does not say which image
a post that left showed, so where an image has three posts or more and its canonical one is
filtered out, the post standing for it elsewhere is not chosen again when the one chosen
leaves. A whole export (`Request.full`, or any change of the shaping header) brings them
back in line. A rerank of the head's percentiles moves every score's change number: every
shard is built again (to the same bytes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from assets.captions.formats import read_rows
from assets.captions.shards import Piece, Target
from assets.catalog.statements import statement

# The formats whose shards hold ranges of added_seq. The kohya formats cut their shards by
# caption group (a folder per bucket), so a range of posts spreads over every folder: they
# are exported whole.
INCREMENTAL = ("parquet", "jsonl", "webdataset", "hf")
VERSION = 1
# Header entries that count what an export holds, rather than shape it.
COUNTS = ("selected", "dropped", "buckets", "incremental")


@dataclass(frozen=True)
class CatalogState:
    """Where the catalog stands: its last change number and the last added_seq it gave."""

    change_seq: int
    through: int


def catalog_state(con: duckdb.DuckDBPyConnection) -> CatalogState | None:
    """The catalog's change number and last added_seq; None for a catalog that records no
    changes (written before sql/schema/003_changes.sql)."""
    if not con.execute(statement("captions/change_tracking")).fetchone()[0]:
        return None
    change_seq, through = con.execute(statement("captions/change_state")).fetchone()
    return CatalogState(int(change_seq), int(through))


def shape(header: dict, target: Target, image_root: Path) -> dict[str, str]:
    """Per header entry (and the target's settings, and the image root), a digest of what
    it says: two exports with the same digests give the same shard for the same posts."""
    shaping = {k: v for k, v in header.items() if k not in COUNTS}
    shaping["target"] = {
        "format": target.fmt,
        "shard_size": target.shard_size,
        "caption_extension": target.caption_extension,
        "sidecar_layout": target.sidecar_layout,
        "image_root": str(target.image_root),
        "link": target.link,
    }
    shaping["images"] = str(image_root)
    return {
        key: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]
        for key, value in sorted(shaping.items())
    }


@dataclass(frozen=True)
class Span:
    """A shard's range of added_seq, inclusive, and its index (in its name)."""

    index: int
    lo: int
    hi: int


@dataclass
class Plan:
    """What an export builds: everything (`full`), or the ranges in `rebuild`, keeping the
    previous export's other shards (`kept`: their manifest entries)."""

    full: bool
    reason: str
    state: CatalogState | None = None
    kept: list[dict] = field(default_factory=list)
    rebuild: list[Span] = field(default_factory=list)
    next_index: int = 0  # the first index no shard has
    previous_indexes: frozenset[int] = frozenset()

    def ranges(self) -> list[tuple[int, int]]:
        return [(s.lo, s.hi) for s in self.rebuild]


def _index(entry: dict) -> int:
    return int(entry["name"].split("-")[1])


def _whole(reason: str, state: CatalogState | None, previous: dict | None) -> Plan:
    indexes = frozenset(_index(s) for s in (previous or {}).get("shards", []))
    return Plan(True, reason, state, previous_indexes=indexes)


def plan(
    con: duckdb.DuckDBPyConnection,
    previous: dict | None,
    digests: dict[str, str],
    target: Target,
    head: str,
    full: bool = False,
) -> Plan:
    """Whether this export can build only what changed since `previous` (the manifest in the
    export folder), and if so which ranges."""
    state = catalog_state(con) if target.fmt in INCREMENTAL else None
    if target.fmt not in INCREMENTAL:
        return _whole(f"the {target.fmt} format is exported whole", None, previous)
    if state is None:
        return _whole(
            "the catalog records no changes (written before change numbers)", None, previous
        )
    if full:
        return _whole("a whole export was asked for", state, previous)
    if previous is None:
        return _whole("no previous export", state, previous)
    recorded = previous.get("incremental")
    if not isinstance(recorded, dict) or recorded.get("version") != VERSION:
        return _whole("the previous export records no added_seq ranges", state, previous)
    if previous.get("format") != target.fmt:
        return _whole("the previous export is of another format", state, previous)
    changed = sorted(
        k for k in {*digests, *recorded["shape"]} if digests.get(k) != recorded["shape"].get(k)
    )
    if changed:
        return _whole(f"changed since the previous export: {', '.join(changed)}", state, previous)
    shards = previous["shards"]
    if not shards:
        return _whole("the previous export holds no shard", state, previous)
    if state.change_seq < recorded["change_seq"] or state.through < recorded["through"]:
        return _whole(
            "the catalog is behind the previous export (was it replaced?)", state, previous
        )
    missing = [s["name"] for s in shards if not (target.out / s["name"]).is_file()]
    # Only a missing file: a changed one (sha256) is the manifest check's to report.
    seqs = _changed_seqs(con, recorded["change_seq"], recorded["through"], head)
    if seqs is None:
        return _whole("posts without an added_seq changed", state, previous)
    los = np.array([s["added_seq"][0] for s in shards], np.int64)
    his = np.array([s["added_seq"][1] for s in shards], np.int64)
    last = len(shards) - 1
    within = seqs[seqs <= recorded["through"]]
    touched = set(np.clip(np.searchsorted(los, within, side="right") - 1, 0, last).tolist())
    touched |= {i for i, s in enumerate(shards) if s["name"] in missing}
    fresh = bool((seqs > recorded["through"]).any())
    his[last] = state.through  # the last range takes every post numbered since
    spans = [Span(_index(s), int(lo), int(hi)) for s, lo, hi in zip(shards, los, his, strict=True)]
    room = shards[last]["rows"] < target.shard_size
    next_index = 1 + max(_index(s) for s in shards)
    rebuild, kept = [], []
    for i, (entry, span) in enumerate(zip(shards, spans, strict=True)):
        if i in touched or (i == last and fresh and room):
            rebuild.append(span)
        elif i == last and fresh:
            # full: it keeps its range, and the posts numbered since start a new shard
            kept.append({**entry, "added_seq": [span.lo, int(recorded["through"])]})
            rebuild.append(Span(next_index, int(recorded["through"]) + 1, state.through))
            next_index += 1
        else:
            kept.append({**entry, "added_seq": [span.lo, span.hi]})
    what = f"{len(rebuild)} of {len(shards)} shards' ranges changed" + (
        ", new posts" if fresh else ""
    )
    return Plan(
        False,
        what,
        state,
        kept,
        rebuild,
        next_index,
        frozenset(_index(s) for s in shards),
    )


def _changed_seqs(
    con: duckdb.DuckDBPyConnection, seen: int, through: int, head: str
) -> np.ndarray | None:
    """The added_seq of the posts whose rows may differ since change `seen`; None where one
    has none."""
    params = {"seen": seen, "through": through, "head": head}
    found = con.execute(statement("captions/changes"), params).fetchnumpy()["added_seq"]
    if np.ma.isMaskedArray(found):
        if found.mask.any():
            return None
        found = found.data
    return np.sort(np.asarray(found, np.int64))


@dataclass
class _Cut:
    """A piece of the export being laid out: a shard to build (`rows`) or one kept (`kept`)."""

    index: int
    lo: int
    rows: pl.DataFrame | None = None
    kept: dict | None = None
    hi: int = 0
    extra: dict = field(default_factory=dict)  # stats added to a kept shard (empty ranges)


def lay_out(
    layout: Plan,
    posts: pl.DataFrame,
    rows: pl.DataFrame,
    left_out: pl.DataFrame,
    shard_size: int,
) -> tuple[list[Piece], dict]:
    """The shards of the export, in added_seq order, with their manifest entries; and the
    totals (selected, dropped, buckets). `posts` are the posts selected in the ranges built
    (all of them for a whole export), `rows` those located, `left_out` the others' added_seq
    and reason."""
    through = layout.state.through
    spans = [Span(0, 0, through)] if layout.full else layout.rebuild
    cuts = [_Cut(_index(e), e["added_seq"][0], kept=e) for e in layout.kept]
    next_index = 0 if layout.full else layout.next_index
    seq = rows["added_seq"]
    for span in spans:
        lo, hi = np.searchsorted(seq.to_numpy(), [span.lo, span.hi + 1])
        part = rows.slice(int(lo), int(hi - lo))
        starts = range(0, max(part.height, 1), shard_size)
        for n, start in enumerate(starts):
            chunk = part.slice(start, shard_size)
            if n == 0:
                index = span.index if not layout.full else next_index
                if layout.full:
                    next_index += 1
                cuts.append(_Cut(index, span.lo, chunk))
            else:
                cuts.append(_Cut(next_index, int(chunk["added_seq"][0]), chunk))
                next_index += 1
    cuts.sort(key=lambda c: c.lo)
    for cut, after in zip(cuts, [*cuts[1:], None], strict=True):
        cut.hi = after.lo - 1 if after is not None else through
    stats = _Stats(posts, left_out)
    laid: list[_Cut] = []
    carried: _Cut | None = None  # an empty range before any shard
    for cut in cuts:
        if cut.rows is not None and cut.rows.height == 0:
            gone = stats.within(cut.lo, cut.hi)
            if laid:
                laid[-1].hi = cut.hi
                if laid[-1].kept is not None:
                    laid[-1].extra = _add(laid[-1].extra, gone)
            elif carried is None:
                carried = _Cut(cut.index, cut.lo, hi=cut.hi, extra=gone)
            else:
                carried.hi, carried.extra = cut.hi, _add(carried.extra, gone)
            continue
        if carried is not None:
            cut.lo = carried.lo
            if cut.kept is not None:
                cut.extra = _add(cut.extra, carried.extra)
            carried = None
        laid.append(cut)
    pieces, totals = [], _add({}, carried.extra if carried else {})
    for cut in laid:
        if cut.kept is not None:
            entry = {**cut.kept, "added_seq": [cut.lo, cut.hi]}
            entry.update(_add({k: entry[k] for k in ("selected", "dropped", "buckets")}, cut.extra))
            pieces.append(Piece(cut.index, None, entry))
        else:
            entry = {"added_seq": [cut.lo, cut.hi], **stats.within(cut.lo, cut.hi)}
            pieces.append(Piece(cut.index, cut.rows, entry))
        totals = _add(totals, {k: entry[k] for k in ("selected", "dropped", "buckets")})
    return pieces, totals


class _Stats:
    """Posts selected, left out (by reason) and per bucket, within ranges of added_seq."""

    def __init__(self, posts: pl.DataFrame, left_out: pl.DataFrame) -> None:
        self.posts = posts.select("added_seq", "bucket")
        self.left_out = left_out

    def within(self, lo: int, hi: int) -> dict:
        inside = pl.col("added_seq").is_between(lo, hi)
        posts = self.posts.filter(inside)
        gone = self.left_out.filter(inside).group_by("reason").len().sort("reason")
        buckets = posts.group_by("bucket").len().sort("bucket")
        return {
            "selected": posts.height,
            "dropped": dict(zip(gone["reason"].to_list(), gone["len"].to_list(), strict=True)),
            "buckets": {str(b): n for b, n in zip(buckets["bucket"], buckets["len"], strict=True)},
        }


def _add(a: dict, b: dict) -> dict:
    """Stats added up: selected, dropped by reason, buckets (keys in order)."""

    def merged(x: dict, y: dict, key=str) -> dict:
        out = dict(x)
        for k, v in y.items():
            out[k] = out.get(k, 0) + v
        return dict(sorted(out.items(), key=lambda kv: key(kv[0])))

    return {
        "selected": a.get("selected", 0) + b.get("selected", 0),
        "dropped": merged(a.get("dropped", {}), b.get("dropped", {})),
        "buckets": merged(a.get("buckets", {}), b.get("buckets", {}), key=int),
    }


# Formats whose shards give each row's md5, width and height (read back by read_rows).
SIZES_KEPT = ("parquet", "jsonl", "hf")


def known_sizes(layout: Plan, previous: dict | None, target: Target) -> pl.DataFrame | None:
    """The sizes (md5, width, height) the shards about to be rebuilt hold: an image with the
    same md5 has the same bytes, so its size need not be read from its file again. None for
    a whole export (which reads every image) and formats that do not keep them."""
    if layout.full or previous is None or target.fmt not in SIZES_KEPT:
        return None
    rebuilt = {span.index for span in layout.rebuild}
    frames = []
    for entry in previous["shards"]:
        path = target.out / entry["name"]
        if _index(entry) in rebuilt and path.is_file():
            frames.append(
                read_rows(target.fmt, path)
                .select("md5", "width", "height")
                .drop_nulls()
                .cast({"md5": pl.String, "width": pl.Int32, "height": pl.Int32})
            )
    return pl.concat(frames) if frames else None


def record(state: CatalogState, digests: dict[str, str]) -> dict:
    """The manifest's `incremental` entry."""
    return {
        "version": VERSION,
        "change_seq": state.change_seq,
        "through": state.through,
        "shape": digests,
    }


def has_ranges(fmt: str, state: CatalogState | None, posts: pl.DataFrame) -> bool:
    """Whether a whole export of `posts` can record added_seq ranges (for the next one)."""
    return (
        fmt in INCREMENTAL
        and state is not None
        and "added_seq" in posts.columns
        and posts["added_seq"].null_count() == 0
    )
