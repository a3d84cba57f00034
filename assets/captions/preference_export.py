"""A `preference-pairs` export (preference.py): the labelers' resolved pairs
(`assets.labels.paths.pairs_path`) and, when asked, pairs ranked by the active head, written
as parquet shards with a manifest, as `scoretag export --format preference-pairs` runs it.

The catalog is opened read-only, as the other exports open it. A pair is left out, counted
by reason in the manifest, when a post of it is not in the catalog (`post_not_in_catalog`),
is deleted (`post_deleted`), lies outside the export's ratings or sites (`outside_filter`),
or its image is not found (`image_not_found`), cannot be read (`image_unreadable`) or is no
image PIL decodes (`image_undecodable`); `missing_images` counts the posts behind these.
The export is whole every time; a shard whose content is already there is not rewritten, and
the shards the new manifest no longer lists are removed after it.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from assets.captions import manifest as manifests
from assets.captions.calibration import active_head
from assets.captions.captions import CaptionRules
from assets.captions.export import Images, connect
from assets.captions.lookup import keys_of
from assets.captions.preference import (
    CHOSEN,
    HEAD,
    HUMAN,
    PREFERENCE,
    SCHEMA,
    HeadPairs,
    head_pairs,
    human_pairs,
    post_captions,
    ranking_id,
    read_image,
    shared_caption,
    unordered,
    unreadable,
    write_shard,
)
from assets.captions.selection import Filter, with_images
from assets.catalog.statements import statement
from orchestration.atomic import temporary_name

PAIRS_PER_SHARD = 1000  # two images a pair: a shard of about a gigabyte of booru images


@dataclass(frozen=True)
class PairRequest:
    out: Path
    pairs_file: Path  # the resolved human pairs (absent until pairs are labeled)
    rules: CaptionRules
    where: Filter  # ratings and sites; the minimum bucket does not apply to pairs
    head_pairs: HeadPairs = HeadPairs()
    shard_size: int = PAIRS_PER_SHARD
    command: str = ""
    lock_timeout_s: float = 0.0
    memory_mb: int | None = None


@dataclass
class PairResult:
    head: str | None
    manifest: dict
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        m = self.manifest
        sources = ", ".join(f"{n} {s}" for s, n in m["sources"].items())
        left = ", ".join(f"{n} {r}" for r, n in m["left_out"].items())
        return f"{m['rows']} pairs ({sources}; {m['ties']} ties)" + (
            f"; left out: {left}" if left else ""
        )


def _human(path: Path) -> tuple[pl.DataFrame, dict[str, int]]:
    if not path.is_file():
        return pl.DataFrame(schema=CHOSEN), {}
    return human_pairs(pl.read_parquet(path))


def _chosen(con, request: PairRequest, human: pl.DataFrame) -> tuple[pl.DataFrame, str | None, int]:
    """The human pairs and the head's, the active head, and how many head pairs were
    eligible."""
    head = active_head(con)
    wanted = request.head_pairs
    if not wanted.count:
        return human, head, 0
    if head is None:
        raise ValueError("no head is active: head-ranked pairs need one")
    params = {
        "head": head,
        "ratings": sorted(request.where.ratings),
        "sites": sorted(request.where.sites),
    }
    scored = con.execute(statement("preference/scored"), params).pl()
    taken = human.select(unordered(pl.col("image_0_uid"), pl.col("image_1_uid"))).to_series()
    machine, eligible = head_pairs(scored, wanted, head, taken)
    return pl.concat([human, machine]), head, eligible


def _post_status(posts: pl.DataFrame, where: Filter, images: Images) -> pl.DataFrame:
    """post_key, `reason` (null where the post's image can go in a pair) and where its image
    is (image_path, tar_offset, tar_length)."""
    outside = ~pl.col("rating").is_in(list(where.ratings)).fill_null(False)
    if where.sites:
        outside = outside | ~pl.col("site").is_in(list(where.sites))
    posts = posts.with_columns(
        reason=pl.when(pl.col("is_deleted"))
        .then(pl.lit("post_deleted"))
        .when(outside)
        .then(pl.lit("outside_filter"))
    )
    usable = posts.filter(pl.col("reason").is_null())
    sha512 = images.sha512() if images.sha512 and usable["md5"].null_count() else None
    if usable.height and images.entries is not None:
        index = images.entries(keys_of(usable, sha512))
    else:
        index = images.index() if usable.height else pl.DataFrame()
    found = with_images(usable.drop("reason"), "hf", images.root, index, sha512).rows
    places = found.select("post_key", "image_path", "tar_offset", "tar_length")
    reasons = [unreadable(place) for place in places.drop("post_key").iter_rows()]
    places = places.with_columns(image_reason=pl.Series(reasons, dtype=pl.String))
    status = posts.select("post_key", "reason").join(places, on="post_key", how="left")
    not_found = pl.col("reason").is_null() & pl.col("image_path").is_null()
    return status.with_columns(
        reason=pl.coalesce(
            "reason", pl.when(not_found).then(pl.lit("image_not_found")), "image_reason"
        )
    ).drop("image_reason")


def _sides(chosen: pl.DataFrame, posts: pl.DataFrame, status: pl.DataFrame) -> pl.DataFrame:
    """`chosen` with each side's reason, image_key, caption and score (columns suffixed _0,
    _1); a post the catalog lacks has reason `post_not_in_catalog`."""
    known = posts.select("post_key", "image_key", "caption", "score").join(
        status, on="post_key", how="left"
    )
    for side in ("0", "1"):
        named = known.rename({c: f"{c}_{side}" for c in known.columns if c != "post_key"})
        chosen = chosen.join(
            named,
            left_on=f"image_{side}_uid",
            right_on="post_key",
            how="left",
            maintain_order="left",
        ).with_columns(
            pl.when(pl.col(f"image_key_{side}").is_null())
            .then(pl.lit("post_not_in_catalog"))
            .otherwise(pl.col(f"reason_{side}"))
            .alias(f"reason_{side}")
        )
    return chosen.with_columns(reason=pl.coalesce("reason_0", "reason_1"))


def _missing_images(sides: pl.DataFrame) -> dict[str, int]:
    """Distinct posts of the chosen pairs left out, by reason."""
    both = pl.concat(
        [sides.select(post_key=f"image_{s}_uid", reason=f"reason_{s}") for s in ("0", "1")]
    )
    counts = both.drop_nulls("reason").unique().group_by("reason").len().sort("reason")
    return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def _rows(kept: pl.DataFrame) -> pl.DataFrame:
    """The shard columns but the images."""
    captions = [
        shared_caption(a or "", b or "") for a, b in kept.select("caption_0", "caption_1").rows()
    ]
    ids = [
        ranking_id(list(parts))
        for parts in kept.select("source", "user_id", "image_0_uid", "image_1_uid").rows()
    ]
    return kept.select(
        are_different=pl.col("image_key_0") != pl.col("image_key_1"),
        best_image_uid=pl.when(pl.col("label_0") == 1.0)
        .then("image_0_uid")
        .when(pl.col("label_0") == 0.0)
        .then("image_1_uid"),
        caption=pl.Series(captions, dtype=pl.String),
        created_at="created_at",
        has_label=pl.lit(True),
        image_0_uid="image_0_uid",
        image_1_uid="image_1_uid",
        label_0="label_0",
        label_1=1.0 - pl.col("label_0"),
        ranking_id=pl.Series(ids, dtype=pl.Int64),
        user_id="user_id",
        source="source",
        caption_0="caption_0",
        caption_1="caption_1",
        score_0="score_0",
        score_1="score_1",
    )


def _write_shards(rows: pl.DataFrame, out: Path, size: int, places: dict) -> tuple[list, list]:
    """Shards of `size` pairs in `out`, named by content; (manifest entries, names written)."""
    out.mkdir(parents=True, exist_ok=True)
    entries, written = [], []
    for index, start in enumerate(range(0, rows.height, size)):
        part = rows.slice(start, size)
        staged = temporary_name(out / f"shard-{index:05d}.parquet")
        try:
            write_shard(part, staged, lambda key: read_image(*places[key]))
            sha256 = manifests.sha256_file(staged)
            name = manifests.shard_name(index, sha256, ".parquet")
            if (out / name).is_file():
                staged.unlink()
            else:
                os.replace(staged, out / name)
                written.append(name)
        finally:
            staged.unlink(missing_ok=True)
        entries.append({"name": name, "rows": part.height, "sha256": sha256})
    return entries, written


def _counts(rows: pl.DataFrame) -> dict:
    by = rows.group_by("source").len()
    sources = {s: 0 for s in (HUMAN, HEAD)} | dict(zip(by["source"], by["len"], strict=True))
    human = rows.filter(pl.col("source") == HUMAN).group_by("user_id").len().sort("user_id")
    return {
        "sources": sources,
        "ties": int((rows["label_0"] == 0.5).sum()),
        "labelers": dict(zip(human["user_id"].to_list(), human["len"].to_list(), strict=True)),
        "empty_captions": int((rows["caption"] == "").sum()),
    }


def export_pairs(catalog: Path, request: PairRequest, images: Images, now: datetime) -> PairResult:
    """Write the export (see the module's docstring)."""
    human, left_out = _human(request.pairs_file)
    with connect(catalog, False, request.lock_timeout_s, request.memory_mb) as con:
        chosen, head, eligible = _chosen(con, request, human)
        keys = sorted(set(chosen["image_0_uid"]) | set(chosen["image_1_uid"]))
        posts = con.execute(statement("preference/posts"), {"keys": keys}).pl()
    if chosen.height == 0:
        heads = (
            f"no head-ranked pair has a score gap above {request.head_pairs.margin}"
            if request.head_pairs.count
            else "no head-ranked pairs were asked for (--head-pairs)"
        )
        raise ValueError(
            f"no pairs to export: {request.pairs_file} holds none (label pairs in the app's "
            f"compare mode) and {heads}"
        )
    status = _post_status(posts, request.where, images)
    posts = posts.join(post_captions(posts, request.rules), on="post_key", how="left")
    sides = _sides(chosen, posts, status)
    dropped = sides.drop_nulls("reason").group_by("reason").len().sort("reason")
    left_out |= dict(zip(dropped["reason"].to_list(), dropped["len"].to_list(), strict=True))
    rows = _rows(sides.filter(pl.col("reason").is_null()))
    places = {
        key: place
        for key, *place in status.filter(pl.col("reason").is_null())
        .select("post_key", "image_path", "tar_offset", "tar_length")
        .iter_rows()
    }
    shards, written = _write_shards(rows, request.out, request.shard_size, places)
    manifest = {
        "scoretag_export": 1,
        "format": PREFERENCE,
        "head_version": head,
        "caption": {"text": "tags both posts share, no score tags", **_rules(request.rules)},
        "filter": {k: v for k, v in request.where.describe().items() if k != "min_bucket"},
        "pairs_file": str(request.pairs_file) if request.pairs_file.is_file() else None,
        "head_pairs": {
            "requested": request.head_pairs.count,
            "margin": request.head_pairs.margin,
            "eligible": eligible,
        },
        **_counts(rows),
        "left_out": left_out,
        "missing_images": _missing_images(sides),
        "columns": SCHEMA.names,
        "command": request.command,
        "rows": rows.height,
        "shards": shards,
        "created_at": now.isoformat(),
    }
    manifests.write(request.out, manifest)
    removed = manifests.stale_shards(request.out, manifest)
    for path in removed:
        path.unlink()
    unchanged = [s["name"] for s in shards if s["name"] not in written]
    return PairResult(head, manifest, written, unchanged, [p.name for p in removed])


def _rules(rules: CaptionRules) -> dict:
    described = rules.describe()
    return {k: v for k, v in described.items() if k not in ("style", "min_bucket")}


def pair_request(
    profile,
    out: Path,
    shown: str | None = None,
    *,
    ratings: tuple[str, ...] | None = None,
    sites: tuple[str, ...] | None = None,
    shard_size: int | None = None,
    head_pairs: HeadPairs | None = None,
) -> PairRequest:
    """The request of `scoretag export --format preference-pairs` on a profile: its
    [captions] caption rules, ratings and sites, overridden by the command line."""
    from assets.labels.paths import pairs_path

    settings = profile.settings.captions
    rules = CaptionRules.from_settings(settings, style="none", min_bucket=1)
    where = Filter(ratings=tuple(ratings or settings.ratings), sites=tuple(sites or settings.sites))
    size = shard_size or PAIRS_PER_SHARD
    words = ["scoretag", "--profile", profile.name]
    if profile.config:
        words += ["--config", profile.config]
    words += ["export", "--format", PREFERENCE, "--ratings", ",".join(sorted(where.ratings))]
    if where.sites:
        words += ["--sites", ",".join(sorted(where.sites))]
    words += ["--shard-size", str(size)]
    if head_pairs and head_pairs.count:
        words += ["--head-pairs", str(head_pairs.count), "--margin", str(head_pairs.margin)]
    words += ["--out", str(shown or out)]
    return PairRequest(
        out,
        pairs_path(profile.layout),
        rules,
        where,
        head_pairs or HeadPairs(),
        size,
        shlex.join(words),
        lock_timeout_s=profile.settings.catalog.lock_timeout_s,
        memory_mb=profile.settings.catalog.memory_mb,
    )
