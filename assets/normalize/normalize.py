"""normalized_scores from the raw_posts files: image keys, cohorts, popularity, norm_score.

norm_score = the mid-rank percentile of popularity within the post's cohort (site, rating,
upload period), against the cohort's mature, live posts. A 90th-percentile explicit e621 post
and a 90th-percentile general Danbooru post both get 0.9.

A run costs what is new. DuckDB reads the raw files out of core (its memory capped by
`[normalize] memory_mb`, spilling to the scratch folder past it) and finds, of each post, the
newest record. When raw files were only added since the last run, only the posts they bring
are compared with what the parts hold, and only the groups (site, rating, period) those posts
fall in, or leave, are worked out again, with the small periods their pooled cohort spans; the
parts of those periods are rewritten and the rest stay. Anything else (a file superseded or
ingested again, other settings, no state) works everything out again. Cohorts are scored in
polars a batch of whole groups at a time (`[normalize] batch_rows`), so memory holds a batch,
or the largest cohort if that is larger: a period bounds it, not the catalog.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from assets.images.keys import with_image_key
from assets.normalize import changes, cohorts, images, store
from assets.normalize.percentile import group_codes, mid_rank
from assets.normalize.popularity import popularity
from orchestration import objectstore
from orchestration.clock import Clock
from orchestration.objectstore import Location
from orchestration.settings import NormalizeSettings
from orchestration.sqlfiles import run_script

COHORT = ("site", "rating", "cohort")
NO_DATE = "__HIVE_DEFAULT_PARTITION__"  # DuckDB's folder for the posts without a period
GROUP = ("site", "rating", "period")

# Every column of a part: the published scores, then what an incremental run needs to work
# a group out again without the raw files (the inputs, and which record won).
SCHEMA: dict[str, pl.DataType] = {
    "site": pl.String,
    "post_id": pl.Int64,
    "image_key": pl.String,
    "is_canonical": pl.Boolean,
    "rating": pl.String,
    "period": pl.String,
    "cohort": pl.String,
    "snapshot_at": pl.Datetime("us", "UTC"),
    "age_days": pl.Float64,
    "immature": pl.Boolean,
    "is_deleted": pl.Boolean,
    "in_reference": pl.Boolean,
    "provisional": pl.Boolean,
    "wilson": pl.Float64,
    "popularity": pl.Float64,
    "norm_score": pl.Float64,
    "md5": pl.String,
    "sha512": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "updated_at": pl.Datetime("us", "UTC"),
    "score": pl.Int64,
    "up_votes": pl.Int64,
    "down_votes": pl.Int64,
    "favorites": pl.Int64,
    "source_file": pl.String,
    "ingested_at": pl.Datetime("us", "UTC"),
    "record": pl.Int64,
}
# The raw columns read: POSTS' names (assets/ingest/schema.py).
RAW = (
    "site",
    "post_id",
    "md5",
    "sha512",
    "created_at",
    "updated_at",
    "rating",
    "score",
    "up_votes",
    "down_votes",
    "favorites",
    "is_deleted",
    "source_file",
    "ingested_at",
    "record",
)


@dataclass
class Outcome:
    """What a run did, for the asset's metadata and the benchmarks."""

    mode: str  # full, incremental or unchanged
    reason: str
    seq: int
    groups: int = 0  # groups (site, rating, period) worked out
    rows: int = 0  # rows scored
    parts_written: int = 0
    changes: dict[str, int] = field(default_factory=dict)  # upserts, values, removed
    phases: dict[str, float] = field(default_factory=dict)


def score_groups(frame: pl.DataFrame, settings: NormalizeSettings) -> pl.DataFrame:
    """Cohorts, popularity and norm_score of `frame`: whole groups (site, rating, period),
    and with them every group of the pooled cohorts they are in. Canonical posts apart."""
    weights = {
        "wilson": settings.weight_wilson,
        "favorites": settings.weight_favorites,
        "score": settings.weight_score,
    }
    frame = cohorts.assign(frame, settings.min_cohort_size)
    codes = group_codes(frame, COHORT)
    frame = popularity(frame, codes, "in_reference", settings.wilson_z, weights)
    frame = mid_rank(frame, "popularity", COHORT, "in_reference", "norm_score", codes)
    # A post keeps the canonical flag it had (an incremental run brings it along) until its
    # image's posts are ranked again; a new post stands for its image until then.
    kept = pl.col("is_canonical") if "is_canonical" in frame.columns else pl.lit(None)
    frame = with_image_key(frame).with_columns(
        provisional=~pl.col("in_reference"), is_canonical=kept.cast(pl.Boolean).fill_null(True)
    )
    return frame.select([pl.col(c).cast(t) for c, t in SCHEMA.items()])


def normalize_posts(
    posts: pl.DataFrame, snapshots: pl.DataFrame, settings: NormalizeSettings
) -> pl.DataFrame:
    """Every post of `posts` (raw rows: the newest record of each post is kept) with its
    normalized score, `snapshots` (source_file, snapshot_at) saying when each file was taken:
    the whole computation in memory, for small inputs and tests."""
    raw = posts.select(
        [
            (pl.col(c) if c in posts.columns else pl.lit(None)).cast(_RAW_TYPES[c]).alias(c)
            for c in RAW
        ]
    )
    with tempfile.TemporaryDirectory(prefix="scoretag-normalize-") as tmp:
        path = Path(tmp) / "raw.parquet"
        raw.write_parquet(path)  # read as the raw_posts files are
        with _connection(settings, None) as con:
            con.register("snapshots", snapshots.select("source_file", "snapshot_at").to_arrow())
            _current(con, settings, [path])
            _score_all(con, settings)
            frame = _canonical_all(con, settings)
    return frame.sort("site", "post_id")


def normalize_files(files: Sequence[Location], settings: NormalizeSettings) -> pl.DataFrame:
    """normalized_scores of these raw_posts files, worked out in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="scoretag-normalize-") as tmp:
        update(Path(tmp) / "out", files, settings, Path(tmp))
        return store.read_scores(Path(tmp) / "out")


def file_key(path: Location) -> str:
    """The raw file a posts table is of (`<site>/<name>`, its rows' source_file)."""
    return f"{path.parent.name}/{path.name.removesuffix('.parquet')}"


def update(
    root: Location, files: Sequence[Location], settings: NormalizeSettings, scratch: Path
) -> Outcome:
    """Bring normalized_scores under `root` up to date with the raw_posts `files`."""
    clock = Clock()
    state = store.State.read(root)
    signatures = {file_key(f): objectstore.signature(f) for f in files}
    by_key = {file_key(f): f for f in files}
    reason = _full_reason(state, settings, signatures)
    if not reason and not store.part_files(root):
        reason = "no part written yet"
    with _connection(settings, scratch) as con:
        for path in [root, *files]:
            objectstore.register(con, path)
        if reason:
            outcome = _full(con, root, by_key, signatures, settings, reason, state, clock, scratch)
        else:
            new = [k for k, s in signatures.items() if state.files.get(k, {}).get("signature") != s]
            if not new:
                return Outcome("unchanged", "no raw file was added since the last run", state.seq)
            outcome = _incremental(con, root, by_key, new, signatures, settings, state, clock)
    outcome.phases = {k: round(v, 4) for k, v in clock.laps.items()}
    return outcome


def _full_reason(
    state: store.State | None, settings: NormalizeSettings, signatures: dict[str, str]
) -> str:
    if state is None:
        return "no earlier run (or one of an older format)"
    if state.settings != store.settings_key(settings):
        return "the [normalize] settings changed"
    gone = [k for k in state.files if k not in signatures]
    if gone:
        return f"{len(gone)} raw file(s) no longer read (superseded or removed): {gone[0]}, ..."
    known = state.files
    again = [k for k, s in signatures.items() if k in known and known[k]["signature"] != s]
    if again:
        return f"{len(again)} raw file(s) ingested again: {again[0]}, ..."
    return ""


def _params(settings: NormalizeSettings) -> dict:
    return {"maturity_days": settings.maturity_days, "months": _months(settings.period)}


def _months(period: str) -> int:
    """The period setting (`1y`, `6mo`, `1q`) in months."""
    for unit, months in (("mo", 1), ("y", 12), ("q", 3)):
        if period.endswith(unit):
            return int(period.removesuffix(unit)) * months
    raise ValueError(f"not a period: {period!r}")


def _snapshots(con, files: list[Location], known: dict[str, dict]) -> pl.DataFrame:
    """When each raw file was taken (known files from the state, the others read)."""
    todo = [f for f in files if file_key(f) not in known]
    found = []
    if todo:
        found.append(
            run_script(
                con, "normalize/snapshots", {"files": [objectstore.url(f) for f in todo]}
            ).pl()
        )
    rows = [
        {"source_file": k, "snapshot_at": v["snapshot_at"]}
        for k, v in known.items()
        if v.get("snapshot_at") is not None
    ]
    if rows:
        found.append(
            pl.DataFrame(rows).with_columns(
                pl.col("snapshot_at").str.to_datetime(time_zone="UTC").dt.cast_time_unit("us")
            )
        )
    schema = {"source_file": pl.String, "snapshot_at": pl.Datetime("us", "UTC")}
    return pl.concat([f.cast(schema) for f in found]) if found else pl.DataFrame(schema=schema)


def _full(con, root, by_key, signatures, settings, reason, state, clock, scratch) -> Outcome:
    files = list(by_key.values())
    snapshots = _snapshots(con, files, {})
    con.register("snapshots", snapshots.to_arrow())
    old = store.part_files(root)
    _current(con, settings, files)
    clock.lap("read")
    frame_rows = _score_all(con, settings)
    clock.lap("score")
    _canonical_in_db(con, settings)
    clock.lap("canonical")
    written = _write_all(con, root, old, scratch)
    clock.lap("write")
    seq = (state.seq if state else 0) + 1
    changes.mark_full(root, seq)
    _save_state(con, root, settings, seq, signatures, snapshots)
    clock.lap("state")
    groups = con.execute("SELECT count(*) FROM (SELECT DISTINCT site, rating, period FROM result)")
    return Outcome("full", reason, seq, groups.fetchone()[0], frame_rows, written, {"full": 1})


def _incremental(con, root, by_key, new, signatures, settings, state, clock) -> Outcome:
    new_files = [by_key[k] for k in new]
    snapshots = _snapshots(con, list(by_key.values()), state.files)
    con.register("snapshots", snapshots.to_arrow())
    parts = store.part_files(root)
    params = {**_params(settings), "parts": [objectstore.url(p) for p in parts]}
    run_script(con, "normalize/newest", {"files": [objectstore.url(f) for f in new_files]})
    run_script(con, "normalize/candidates", params)
    run_script(con, "normalize/derive", params)
    clock.lap("read")
    touched = _touched(con, state)
    con.register("touched", touched.to_arrow())
    # Only the parts of the touched periods are read (a part is one site and period).
    wanted = {(site, period) for site, _, period in touched.iter_rows()}
    paths = [store.part_path(root, site, period) for site, period in sorted(wanted, key=str)]
    found = [objectstore.url(p) for p in paths if p.is_file()]
    # With none of them written yet, any part serves: its rows are of other groups.
    run_script(con, "normalize/touched_rows", {"parts": found or params["parts"][:1]})
    clock.lap("gather")
    rows = _score_all(con, settings)
    clock.lap("score")
    _canonical_around(con, settings, params["parts"])
    clock.lap("canonical")
    seq = state.seq + 1
    counts = changes.write_delta(con, root, seq, [objectstore.url(f) for f in new_files])
    clock.lap("changes")
    written = _rewrite_touched(con, root)
    clock.lap("write")
    _save_state(con, root, settings, seq, signatures, snapshots, state)
    clock.lap("state")
    return Outcome(
        "incremental",
        f"{len(new)} raw file(s) added",
        seq,
        touched.height,
        rows,
        written,
        counts,
    )


def _current(con, settings: NormalizeSettings, files: Sequence[Location]) -> None:
    """`current`: the newest record of every post in these raw_posts files, with its derived
    columns."""
    run_script(con, "normalize/newest", {"files": [objectstore.url(f) for f in files]})
    run_script(con, "normalize/derive", _params(settings))
    run_script(con, "normalize/current")


def _touched(con, state: store.State) -> pl.DataFrame:
    """The groups to work out again: those the winners fall in or leave, and, for each
    (site, rating) among them, every group its pooled cohort held."""
    direct = (
        con.execute(
            "SELECT DISTINCT site, rating, period FROM winners "
            "UNION SELECT DISTINCT site, rating, period FROM replaced"
        )
        .pl()
        .cast({"site": pl.String, "rating": pl.String, "period": pl.String})
    )
    known = pl.DataFrame(
        state.groups, schema={**dict.fromkeys(GROUP, pl.String), "cohort": pl.String}
    )
    pooled = known.filter(pl.col("cohort") == cohorts.POOLED).join(
        direct.select("site", "rating").unique(), on=["site", "rating"], how="semi"
    )
    return pl.concat([direct, pooled.select(GROUP)]).unique()


def _score_all(con, settings: NormalizeSettings) -> int:
    """Score every group of `current` into the table `result`, a batch of whole groups (and
    of whole pooled cohorts) at a time."""
    groups = run_script(con, "normalize/groups").pl()
    con.register("no_rows", pl.DataFrame(schema=SCHEMA).to_arrow())
    con.execute("CREATE OR REPLACE TEMP TABLE result AS SELECT * FROM no_rows")
    con.unregister("no_rows")
    total = 0
    for batch in _batches(groups, settings):
        con.register("batch", batch.to_arrow())
        frame = run_script(con, "normalize/batch_rows").pl()
        con.unregister("batch")
        scored = score_groups(frame, settings)
        con.register("scored", scored.to_arrow())
        con.execute("INSERT INTO result BY NAME SELECT * FROM scored")
        con.unregister("scored")
        total += scored.height
    return total


def _batches(groups: pl.DataFrame, settings: NormalizeSettings) -> Iterator[pl.DataFrame]:
    """Groups in batches of about `batch_rows` rows. The small groups of a (site, rating),
    which may pool into one cohort, always go together (pooled groups hold fewer than
    min_cohort_size reference posts each)."""
    small = pl.col("reference") < settings.min_cohort_size
    units = groups.with_columns(
        unit=pl.when(small)
        .then(pl.concat_str("site", pl.lit("/"), "rating", pl.lit("/pooled")))
        .otherwise(pl.concat_str("site", pl.lit("/"), "rating", pl.lit("/"), "period"))
    )
    sizes = units.group_by("unit").agg(pl.col("posts").sum()).sort("unit")
    batch, rows = [], 0
    for unit, posts in sizes.iter_rows():
        if batch and rows + posts > settings.batch_rows:
            yield units.filter(pl.col("unit").is_in(batch)).select(GROUP)
            batch, rows = [], 0
        batch.append(unit)
        rows += posts
    if batch:
        yield units.filter(pl.col("unit").is_in(batch)).select(GROUP)


def _canonical_all(con, settings: NormalizeSettings) -> pl.DataFrame:
    _canonical_in_db(con, settings)
    return con.execute("SELECT * FROM result").pl()


def _canonical_in_db(con, settings: NormalizeSettings) -> None:
    """Every image's canonical post, in `result` (every current post)."""
    shared = run_script(con, "normalize/shared_images").pl()
    _apply_canonical(con, shared, settings)


def _canonical_around(con, settings: NormalizeSettings, parts: list[str]) -> None:
    """An incremental run: the canonical posts of the images the winners have or had, among
    every post of those images; rows outside `result` whose flag changes join it."""
    shared = run_script(con, "normalize/images_around", {"parts": parts}).pl()
    _apply_canonical(con, shared, settings)


def _apply_canonical(con, shared: pl.DataFrame, settings: NormalizeSettings) -> None:
    if shared.height == 0:
        return
    ranked = images.canonical(shared, settings.site_priority).select(
        "site", "post_id", "is_canonical"
    )
    con.register("ranked", ranked.to_arrow())
    run_script(con, "normalize/set_canonical")
    con.unregister("ranked")


def _write_all(con, root: Location, old: list[Location], scratch: Path) -> int:
    """Every part from `result` in one pass (DuckDB writes a file per site and period into
    the scratch folder, then each is moved into place), the parts of no current post
    removed."""
    staging = scratch / "parts"
    shutil.rmtree(staging, ignore_errors=True)
    run_script(con, "normalize/write_parts", {"folder": str(staging)})
    written = []
    for file in sorted(staging.glob("site=*/period=*/*.parquet")):
        site = file.parent.parent.name.removeprefix("site=")
        period = file.parent.name.removeprefix("period=")
        target = store.part_path(root, site, None if period == NO_DATE else period)
        written.append(objectstore.upload(file, target))
    shutil.rmtree(staging, ignore_errors=True)
    for path in set(old) - set(written):
        objectstore.remove(path)
    return len(written)


def _rewrite_touched(con, root: Location) -> int:
    """The parts holding a row of `result`, or a row that left for another part: their rows
    from the part, less those replaced, and the new ones."""
    keys = con.execute(
        "SELECT DISTINCT site, period FROM result "
        "UNION SELECT DISTINCT site, period FROM replaced ORDER BY ALL"
    ).pl()
    for site, period in keys.iter_rows():
        path = store.part_path(root, site, period)
        params = {"site": site, "period": period, "part": objectstore.url(path)}
        script = "normalize/merged_part" if path.is_file() else "normalize/part_rows"
        frame = run_script(con, script, params).pl()
        if frame.height:
            objectstore.write_parquet(frame, path)
        else:
            objectstore.remove(path)
    return keys.height


def _save_state(con, root, settings, seq, signatures, snapshots, state=None) -> None:
    stamps = dict(zip(snapshots["source_file"], snapshots["snapshot_at"], strict=True))
    files = {
        k: {"signature": s, "snapshot_at": stamps.get(k).isoformat() if stamps.get(k) else None}
        for k, s in signatures.items()
    }
    groups = con.execute("SELECT DISTINCT site, rating, period, cohort FROM result").pl()
    kept = {}
    if state is not None:
        kept = {(g["site"], g["rating"], g["period"]): g for g in state.groups}
    for row in groups.iter_rows(named=True):
        kept[(row["site"], row["rating"], row["period"])] = row
    store.State(
        settings=store.settings_key(settings), seq=seq, files=files, groups=list(kept.values())
    ).write(root)
    changes.prune(root, seq, settings.keep_changes)


@contextmanager
def _connection(settings: NormalizeSettings, scratch: Path | None) -> Iterator:
    """DuckDB in memory, capped at `memory_mb` and spilling to `scratch`, with the macros."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = '{int(settings.memory_mb)}MB'")
        if scratch is not None:
            scratch.mkdir(parents=True, exist_ok=True)
            con.execute(f"SET temp_directory = '{scratch / 'duckdb-spill'}'")
        con.execute("SET preserve_insertion_order = false")
        run_script(con, "normalize/macros")
        yield con
    finally:
        con.close()


_RAW_TYPES = {c: SCHEMA[c] for c in RAW}
