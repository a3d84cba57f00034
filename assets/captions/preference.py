"""The `preference-pairs` format: pairwise preferences in the layout of Pick-a-Pic v2
(`yuvalkirstain/pickapic_v2`), the dataset Diffusion-DPO's training scripts read.

One row per judgment: both images' bytes (`jpg_0`, `jpg_1`), `caption`, `label_0` and
`label_1` (1 and 0 for the preferred side, 0.5 each for a tie), `has_label`, `are_different`,
`best_image_uid` (the winner's post key, null for a tie), `image_0_uid` and `image_1_uid`
(post keys), `user_id` (the labeler), `ranking_id`, `created_at`, and, beyond Pick-a-Pic,
`source` (`human` or `head`), each side's own caption (`caption_0`, `caption_1`) and its score
under the active head (`score_0`, `score_1`).

- Image bytes are the files' own, not re-encoded: Pick-a-Pic stores `jpg_*` as plain
  `binary` (not the `Image` feature) and both Diffusion-DPO loaders open them with
  `Image.open(io.BytesIO(...)).convert("RGB")`, which reads PNG, WebP or GIF bytes as well
  as JPEG; re-encoding to JPEG would only lose quality. (As `binary`, `datasets` hands the
  loader bytes; an `Image` feature would hand it decoded images, which `BytesIO` refuses.)
- The caption is the tags both posts share (their captions under the `[captions]` rules
  without score tags, in the order of image 0's caption). Pick-a-Pic's two images answer one
  prompt; two booru posts do not, and the DPO loss conditions both images on one caption.
  The winner's caption would describe content the loser lacks, so the model would also be
  taught "the loser does not match this text" rather than "the loser is worse"; the shared
  tags keep the preference about quality. Score tags are left out since the pair itself is
  the quality signal. Caveat: two unrelated posts may share few tags (or none: the caption is
  then empty and the manifest counts it); `caption_0` and `caption_1` carry each side's
  whole caption for a trainer that prefers the winner's.
- Human pairs keep their left/right order as the labeler saw it (image 0 was on the left),
  so position bias stays visible. Head pairs alternate which side the better-scored post is
  on, so that label_0 carries no position.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from assets.captions.captions import CaptionRules, build_captions
from assets.labels.pairs import OUTCOMES, PAIRS

PREFERENCE = "preference-pairs"
HUMAN, HEAD = "human", "head"
ROW_GROUP = 50  # pairs per row group: 100 images, as the Hub advises for image datasets
SCHEMA = pa.schema(
    [
        ("are_different", pa.bool_()),
        ("best_image_uid", pa.string()),
        ("caption", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("has_label", pa.bool_()),
        ("image_0_uid", pa.string()),
        ("image_1_uid", pa.string()),
        ("jpg_0", pa.binary()),
        ("jpg_1", pa.binary()),
        ("label_0", pa.float64()),
        ("label_1", pa.float64()),
        ("ranking_id", pa.int64()),
        ("user_id", pa.string()),
        ("source", pa.string()),
        ("caption_0", pa.string()),
        ("caption_1", pa.string()),
        ("score_0", pa.float64()),
        ("score_1", pa.float64()),
    ]
)
# A pair as chosen, before its captions and images: image 0 and 1, label_0, who, when, where.
CHOSEN: dict[str, pl.DataType] = {
    "image_0_uid": pl.String,
    "image_1_uid": pl.String,
    "label_0": pl.Float64,
    "user_id": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "source": pl.String,
}


@dataclass(frozen=True)
class HeadPairs:
    """How many pairs the active head adds, and the least score gap it is trusted at."""

    count: int = 0
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 0 or self.margin < 0:
            raise ValueError("head pairs: give a count and a margin of 0 or more")


def _label_0(outcome: pl.Expr) -> pl.Expr:
    return outcome.replace_strict({"left": 1.0, "right": 0.0, "tie": 0.5}, return_dtype=pl.Float64)


def _utc(text: pl.Expr) -> pl.Expr:
    """An ISO time as UTC: with its offset, or read as UTC without one; null if unreadable."""
    aware = text.str.to_datetime("%+", time_unit="us", strict=False).dt.convert_time_zone("UTC")
    naive = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False)
    return pl.coalesce(aware, naive.dt.replace_time_zone("UTC"))


def human_pairs(pairs: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """CHOSEN rows of the resolved pairs (PAIRS), one per labeler and pair, oldest first; and
    the pairs left out by reason (an outcome not in OUTCOMES, a post paired with itself)."""
    missing = set(PAIRS) - set(pairs.columns)
    if missing:
        raise ValueError(f"the pairs file lacks the columns {', '.join(sorted(missing))}")
    bad_outcome = ~pl.col("outcome").is_in(list(OUTCOMES)).fill_null(False)
    same = pl.col("left_key") == pl.col("right_key")
    left_out = {
        "unknown_outcome": pairs.filter(bad_outcome).height,
        "same_post": pairs.filter(~bad_outcome & same).height,
    }
    kept = pairs.filter(~bad_outcome & ~same.fill_null(True))
    chosen = kept.select(
        image_0_uid="left_key",
        image_1_uid="right_key",
        label_0=_label_0(pl.col("outcome")),
        user_id="labeler",
        created_at=_utc(pl.col("created_at")),
        source=pl.lit(HUMAN),
    )
    order = ["created_at", "user_id", "image_0_uid", "image_1_uid"]
    return chosen.sort(order, nulls_last=True).cast(CHOSEN), {
        k: n for k, n in left_out.items() if n
    }


def unordered(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return pl.concat_str(pl.min_horizontal(a, b), pl.max_horizontal(a, b), separator="|")


def head_pairs(
    scored: pl.DataFrame, wanted: HeadPairs, head: str, taken: pl.Series
) -> tuple[pl.DataFrame, int]:
    """Up to `wanted.count` CHOSEN pairs of the head's scored posts (post_key, score; best
    first) whose score gap exceeds the margin, and how many pairs were eligible (above the
    margin, not judged by a person).

    The i-th best post is paired with the one half the ranking below it, so each post is in
    at most one pair and the pairs span the whole range of scores; where more pairs pass the
    margin than are wanted, evenly spaced ones are kept. Pairs a person judged (`taken`,
    unordered keys) are not repeated."""
    half = scored.height // 2
    top, rest = scored.head(half), scored.slice(half, half)
    candidates = pl.DataFrame(
        {"better": top["post_key"], "worse": rest["post_key"], "gap": top["score"] - rest["score"]}
    )
    eligible = candidates.filter(
        (pl.col("gap") > wanted.margin)
        & ~unordered(pl.col("better"), pl.col("worse")).is_in(taken.implode())
    )
    passing = eligible.height
    if eligible.height > wanted.count:
        step = eligible.height / max(wanted.count, 1)
        picks = [int(i * step) for i in range(wanted.count)]
        eligible = eligible[picks] if picks else eligible.clear()
    swap = pl.int_range(pl.len()) % 2 == 1
    chosen = eligible.select(
        image_0_uid=pl.when(swap).then("worse").otherwise("better"),
        image_1_uid=pl.when(swap).then("better").otherwise("worse"),
        label_0=pl.when(swap).then(0.0).otherwise(1.0),
        user_id=pl.lit(f"head:{head}"),
        created_at=pl.lit(None),
        source=pl.lit(HEAD),
    )
    return chosen.cast(CHOSEN), passing


def post_captions(posts: pl.DataFrame, rules: CaptionRules) -> pl.DataFrame:
    """post_key and `caption`: each post's caption under `rules` without score tags."""
    plain = replace(rules, style="none", min_bucket=1, vocabulary=None)
    built = build_captions(posts.with_columns(bucket=pl.lit(9, pl.Int32)), plain)
    return built.select("post_key", "caption")


def shared_caption(first: str, second: str) -> str:
    """The tags of `first` that `second` also has, in `first`'s order."""
    theirs = set(second.split(", "))
    return ", ".join(tag for tag in first.split(", ") if tag and tag in theirs)


def ranking_id(parts: list[str]) -> int:
    """A stable 63-bit id of one judgment (who, which two posts)."""
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def read_image(path: str, offset: int | None, length: int | None) -> bytes:
    with open(path, "rb") as f:
        if offset is None or offset < 0:
            return f.read()
        f.seek(offset)
        return f.read(length)


def unreadable(place: tuple[str, int | None, int | None]) -> str | None:
    """Why the image at `place` (path, tar offset, length) cannot be trained on, or None."""
    try:
        data = read_image(*place)
    except OSError:
        return "image_unreadable"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception:  # PIL raises many types for a bad or unknown image
        return "image_undecodable"
    return None


Reader = Callable[[str], bytes]


def write_shard(rows: pl.DataFrame, target: Path, image_of: Reader) -> None:
    """Write the pairs `rows` (SCHEMA's columns but the images) to `target`, reading each
    side's bytes with `image_of(post_key)` a row group at a time."""
    values = [c for c in SCHEMA.names if c not in ("jpg_0", "jpg_1")]
    with pq.ParquetWriter(target, SCHEMA, compression="zstd") as writer:
        for start in range(0, rows.height, ROW_GROUP):
            part = rows.slice(start, ROW_GROUP)
            table = part.select(values).to_arrow()
            for side in ("0", "1"):
                images = [image_of(key) for key in part[f"image_{side}_uid"]]
                table = table.append_column(f"jpg_{side}", pa.array(images, pa.binary()))
            writer.write_table(table.select(SCHEMA.names).cast(SCHEMA))
