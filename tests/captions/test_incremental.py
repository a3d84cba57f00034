"""Incremental exports on a catalog written by the real writer (refresh_posts, score_missing):
after new posts, a changed post, a removed post, a post scored late, a canonical post moving
to a new one, only the shards whose ranges hold them are built again, the others' files are
left alone, and the export reads, row for row, as a whole export made afresh into another
folder. Anything that shapes the shards otherwise makes a whole export."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from assets.captions.calibration import Policy
from assets.captions.captions import CaptionRules
from assets.captions.export import Images, Request, export_catalog
from assets.captions.formats import read_rows
from assets.captions.lookup import entries_for, keys_of
from assets.captions.manifest import read, verify
from assets.captions.selection import Filter
from assets.captions.shards import Target
from assets.catalog.writer import open_catalog, refresh_posts, score_missing, sync_heads
from assets.embeddings.store import EmbeddingStore
from assets.head.artifact import build_card
from assets.head.models import fit_ridge
from assets.head.registry import Registry
from tests.captions.conftest import image_bytes
from tests.embeddings.conftest import TINY, unit_vectors
from tests.images.helpers import index_of, profile, write_tar

NOW = datetime(2026, 11, 21, tzinfo=UTC)
SHARD = 5
IMAGES = 80


def _md5(image: int) -> str:
    return hashlib.md5(f"image {image}".encode()).hexdigest()


def _post(site: str, post_id: int, image: int, **extra) -> dict:
    return {
        "post_key": f"{site}:{post_id}",
        "site": site,
        "post_id": post_id,
        "md5": _md5(image),
        "image_key": _md5(image),
        "rating": "gs"[post_id % 2],
        "norm_score": 0.5,
        "is_canonical": True,
        "is_deleted": False,
        "immature": False,
        "file_ext": "png",
        "tags": ["1girl", f"tag_{post_id % 7}"],
        "artist_tags": [f"artist_{post_id % 5}"],
        "character_tags": [],
        "copyright_tags": [],
        "meta_tags": [],
        "loaded_at": NOW,
        **extra,
    }


def _frame(posts: list[dict]) -> pl.DataFrame:
    """The posts, with one canonical post per image (danbooru first), as normalize gives."""
    frame = pl.DataFrame(posts).with_columns(
        pl.col(c).cast(pl.List(pl.String))
        for c in ("tags", "artist_tags", "character_tags", "copyright_tags", "meta_tags")
    )
    rank = pl.col("site").replace_strict({"danbooru": 0, "e621": 1}, default=2)
    first = frame.with_columns(rank=rank).sort("image_key", "rank", "post_id")
    first = first.select("post_key", canonical=pl.col("image_key").is_first_distinct())
    return (
        frame.join(first, on="post_key", maintain_order="left")
        .with_columns(is_canonical="canonical")
        .drop("canonical")
    )


class World:
    """A storage root: images, embeddings of them, an active head, and a catalog of posts
    refreshed and scored as the catalog asset does it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images = root / "images"
        self.images.mkdir(parents=True)
        for image in range(IMAGES):
            (self.images / f"{_md5(image)}.png").write_bytes(image_bytes(_md5(image)))
        self.catalog = root / "catalog.duckdb"
        self.store = EmbeddingStore(root / "embeddings", TINY).ensure()
        self.vectors = unit_vectors(IMAGES)
        self.heads = Registry(root / "heads")
        y = np.random.default_rng(0).random(IMAGES)
        net = fit_ridge(self.vectors.astype(np.float32), y).net()
        card = build_card(net, backbone={"model": TINY.model}, head_type="ridge", seed=0)
        self.heads.activate(self.heads.save(net, card).version, "test")
        self.embedded: set[int] = set()
        self.posts: dict[str, dict] = {}

    def embed(self, images: range | list[int]) -> None:
        """An embedding shard of these images (those not embedded yet)."""
        new = [i for i in images if i not in self.embedded]
        if new:
            name = f"e621/part-{min(new)}-{len(self.embedded)}.json"
            self.store.write_shard(name, [_md5(i) for i in new], self.vectors[new])
            self.embedded |= set(new)

    def refresh(self, posts: list[dict] | None = None, rerank_growth: float = 100.0) -> None:
        """The catalog run: posts refreshed (every current post), missing scores filled
        (percentiles ranked again only on the first run, unless `rerank_growth` says)."""
        if posts is not None:
            self.posts = {p["post_key"]: p for p in posts}
        with open_catalog(self.catalog) as con:
            refresh_posts(con, _frame(list(self.posts.values())))
            head = self.heads.load(sync_heads(con, self.heads))
            score_missing(con, head, self.store, rerank_growth)

    def export(self, out: Path, fmt: str = "parquet", **changes) -> object:
        rules = CaptionRules(min_bucket=1, **changes.pop("rules", {}))
        target = Target(fmt, out, changes.pop("shard_size", SHARD), image_root=self.images)
        request = Request(
            target, rules, Filter(), Policy(name="absolute"), self.root / "calibrations"
        )
        request = replace(request, **changes)
        layout, settings = profile(self.root, self.images)
        images = Images(
            self.images,
            lambda: index_of(self.root, self.images),
            entries=lambda keys: entries_for(layout, settings, keys),
        )
        return export_catalog(self.catalog, request, images, True, NOW)


def _initial() -> list[dict]:
    """42 posts: danbooru 1..30 (images 0..29), e621 1..12 (images 30..41)."""
    posts = [_post("danbooru", i, i - 1) for i in range(1, 31)]
    return posts + [_post("e621", i, 29 + i) for i in range(1, 13)]


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = World(tmp_path)
    world.embed(range(42))
    world.refresh(_initial())
    return world


def _stats(out: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir()}


def _rows(out: Path) -> pl.DataFrame:
    manifest = read(out)
    frames = [read_rows(manifest["format"], out / s["name"]) for s in manifest["shards"]]
    return pl.concat(frames) if frames else pl.DataFrame()


def _same_as_afresh(world: World, out: Path, tmp_path: Path, fmt: str = "parquet") -> None:
    """The export in `out` holds, in order, the rows a whole export made now holds, and the
    same counts."""
    fresh = tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}"
    whole = world.export(fresh, fmt)
    assert not whole.incremental
    assert _rows(out).equals(_rows(fresh))
    mine, theirs = read(out), read(fresh)
    for key in ("rows", "selected", "dropped", "buckets"):
        assert mine[key] == theirs[key], key
    assert verify(out, mine) == []
    ranges = [s["added_seq"] for s in mine["shards"]]
    assert ranges[0][0] == 0 and ranges[-1][1] == mine["incremental"]["through"]
    assert all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:], strict=False))


def _changed(before: dict, after: dict, manifest: dict) -> set[int]:
    """Indexes of the shards whose files were written again (or are new)."""
    return {
        int(name.split("-")[1])
        for name in after
        if name.startswith("shard-") and before.get(name) != after[name]
    }


def test_a_first_export_is_whole_and_records_its_ranges(world: World, tmp_path: Path):
    out = tmp_path / "out"
    result = world.export(out)
    assert not result.incremental and result.why == "no previous export"
    manifest = read(out)
    assert manifest["incremental"]["change_seq"] == 2  # a refresh, then a scoring run
    assert [s["rows"] for s in manifest["shards"]] == [5] * 8 + [2]
    keys = _rows(out).select("site", "post_id").rows()
    assert keys == [("danbooru", i) for i in range(1, 31)] + [("e621", i) for i in range(1, 13)]
    assert result.shards == {
        "rebuilt": 0,
        "kept": 0,
        "added": 9,
        "removed": 0,
        "files_written": 9,
    }
    assert set(result.phases) >= {"plan", "select", "locate", "sizes", "write", "total"}
    before = _stats(out)
    again = world.export(out)
    assert again.incremental and again.shards["kept"] == 9 and again.shards["rebuilt"] == 0
    assert _stats(out) == before  # nothing read, nothing written: not even the manifest
    _same_as_afresh(world, out, tmp_path)


def test_new_posts_fill_the_last_shard_then_new_ones(world: World, tmp_path: Path):
    out = tmp_path / "out"
    world.export(out)
    before = _stats(out)
    world.embed(range(42, 50))
    world.refresh([*world.posts.values(), *(_post("e621", i, 29 + i) for i in range(13, 21))])
    result = world.export(out)
    assert result.incremental
    assert result.shards == {
        "rebuilt": 1,
        "kept": 8,
        "added": 1,
        "removed": 0,
        "files_written": 2,
    }
    manifest = read(out)
    assert [s["rows"] for s in manifest["shards"]] == [5] * 10
    assert _changed(before, _stats(out), manifest) == {8, 9}
    # the last shard is full: the next posts start a new one, and it is kept
    world.embed(range(50, 53))
    world.refresh([*world.posts.values(), *(_post("e621", i, 29 + i) for i in range(21, 24))])
    before = _stats(out)
    more = world.export(out)
    assert (more.shards["rebuilt"], more.shards["added"], more.shards["kept"]) == (0, 1, 10)
    assert _changed(before, _stats(out), read(out)) == {10}
    assert result.selected == 50 and manifest["rows"] == 50
    _same_as_afresh(world, out, tmp_path)


def test_a_changed_post_rebuilds_its_shard_alone(world: World, tmp_path: Path):
    out = tmp_path / "out"
    world.export(out)
    before = _stats(out)
    world.posts["danbooru:12"]["tags"] = ["1girl", "a_new_tag"]
    world.refresh()
    result = world.export(out)
    assert result.incremental and result.shards["rebuilt"] == 1 and result.shards["kept"] == 8
    assert result.shards["removed"] == 0 and result.shards["files_written"] == 1
    assert _changed(before, _stats(out), read(out)) == {2}  # danbooru 11..15
    assert any("a new tag" in c for c in _rows(out)["caption"])
    _same_as_afresh(world, out, tmp_path)


def test_a_removed_post_leaves_a_shorter_shard(world: World, tmp_path: Path):
    out = tmp_path / "out"
    world.export(out)
    before = _stats(out)
    del world.posts["danbooru:17"]
    world.refresh()
    result = world.export(out)
    assert result.incremental and result.shards["rebuilt"] == 1
    assert _changed(before, _stats(out), read(out)) == {3}
    assert [s["rows"] for s in read(out)["shards"]] == [5, 5, 5, 4, 5, 5, 5, 5, 2]
    assert result.selected == 41
    _same_as_afresh(world, out, tmp_path)


@pytest.mark.parametrize(("first", "gone"), [(16, 3), (1, 0)])
def test_a_shard_left_empty_is_dropped_and_its_range_joins_another(
    world: World, tmp_path: Path, first: int, gone: int
):
    out = tmp_path / "out"
    world.export(out)
    for i in range(first, first + 5):
        del world.posts[f"danbooru:{i}"]
    world.refresh()
    result = world.export(out)
    assert result.incremental and result.shards["removed"] == 1
    assert result.shards["rebuilt"] == 0 and result.shards["kept"] == 8
    shards = read(out)["shards"]
    assert [int(s["name"].split("-")[1]) for s in shards] == [i for i in range(9) if i != gone]
    _same_as_afresh(world, out, tmp_path)  # the ranges still run from 0, one after another


def test_a_post_scored_late_goes_into_its_own_range(world: World, tmp_path: Path):
    # danbooru:31's image has no embedding yet: catalogued (and numbered) but not scored
    world.refresh([*world.posts.values(), _post("danbooru", 31, 60)])
    out = tmp_path / "out"
    world.export(out)
    world.embed(range(42, 50))
    world.refresh([*world.posts.values(), *(_post("e621", i, 29 + i) for i in range(13, 21))])
    world.export(out)
    exported = {f"{s}:{i}" for s, i in _rows(out).select("site", "post_id").rows()}
    assert "danbooru:31" not in exported
    before = _stats(out)
    world.embed([60])
    world.refresh()  # the scoring run scores it now
    result = world.export(out)
    assert result.incremental and result.shards["rebuilt"] == 1
    # shard 8's range holds its added_seq: six posts now, cut into shard 8 and a new one
    assert _changed(before, _stats(out), read(out)) == {8, 10}
    shards = read(out)["shards"]
    assert [(s["name"][6:11], s["rows"]) for s in shards[-3:]] == [
        ("00008", 5),
        ("00010", 1),
        ("00009", 5),
    ]
    _same_as_afresh(world, out, tmp_path)


def test_a_new_canonical_post_moves_its_image_out_of_an_old_shard(world: World, tmp_path: Path):
    out = tmp_path / "out"
    world.export(out)
    before = _stats(out)
    # image 33 (e621:4, shard 6) is posted to danbooru: its post becomes the canonical one
    world.refresh([*world.posts.values(), _post("danbooru", 99, 33)])
    result = world.export(out)
    assert result.incremental
    assert _changed(before, _stats(out), read(out)) == {6, 8}
    keys = {f"{s}:{i}" for s, i in _rows(out).select("site", "post_id").rows()}
    assert "danbooru:99" in keys and "e621:4" not in keys
    _same_as_afresh(world, out, tmp_path)


def test_a_rerank_rebuilds_every_shard_and_rewrites_none(world: World, tmp_path: Path):
    # Every score's change number moves when the head's percentiles are ranked again; the
    # export holds no percentile, so every shard is built again to the same bytes.
    out = tmp_path / "out"
    world.export(out)
    world.embed(range(42, 50))
    world.refresh(
        [*world.posts.values(), *(_post("e621", i, 29 + i) for i in range(13, 21))],
        rerank_growth=0.1,
    )
    before = _stats(out)
    result = world.export(out)
    assert result.incremental and result.shards["rebuilt"] == 9 and result.shards["kept"] == 0
    assert _changed(before, _stats(out), read(out)) == {8, 9}
    _same_as_afresh(world, out, tmp_path)


@pytest.mark.parametrize("fmt", ["jsonl", "webdataset", "hf"])
def test_the_other_formats_are_incremental_too(world: World, tmp_path: Path, fmt: str):
    out = tmp_path / fmt
    world.export(out, fmt)
    before = _stats(out)
    world.posts["e621:3"]["tags"] = ["changed"]
    world.refresh()
    result = world.export(out, fmt)
    assert result.incremental and result.shards["rebuilt"] == 1
    assert _changed(before, _stats(out), read(out)) == {6}
    _same_as_afresh(world, out, tmp_path, fmt)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"rules": {"style": "v7"}}, "caption"),
        ({"shard_size": 4}, "target"),
        ({"command": "scoretag export --other"}, "command"),
        ({"full": True}, "a whole export was asked for"),
    ],
)
def test_anything_that_shapes_the_shards_makes_a_whole_export(
    world: World, tmp_path: Path, changes: dict, why: str
):
    out = tmp_path / "out"
    world.export(out)
    result = world.export(out, **changes)
    assert not result.incremental and why in result.why
    assert result.shards["kept"] == 0


def test_a_manifest_from_before_ranges_or_a_missing_shard(world: World, tmp_path: Path):
    import json

    out = tmp_path / "out"
    world.export(out)
    manifest = read(out)
    del manifest["incremental"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = world.export(out)
    assert not result.incremental and "records no added_seq ranges" in result.why
    (out / read(out)["shards"][4]["name"]).unlink()  # someone removed a shard
    again = world.export(out)
    assert again.incremental and again.shards["rebuilt"] == 1
    _same_as_afresh(world, out, tmp_path)


def test_kohya_formats_are_exported_whole(world: World, tmp_path: Path):
    out = tmp_path / "kohya_json"
    world.export(out, "kohya_json")
    result = world.export(out, "kohya_json")
    assert not result.incremental and "kohya_json format is exported whole" in result.why
    assert "incremental" not in read(out)


def test_the_entries_of_some_posts_locate_them_as_the_whole_index_does(home, tmp_path: Path):
    """lookup.entries_for reads only the entries of the posts' keys, and locate() finds in
    them what it finds in the whole index: sha512s hashed for Philomena posts, an image in
    two places (the loose file first), a member of a tar shard."""
    from assets.images.find import load_index, scan
    from assets.images.locate import locate
    from tests.captions.conftest import _post, catalog_posts, sha512_table

    images = home.images
    twice = _post("danbooru", 5)["md5"]
    write_tar(
        images / "more.tar",
        [(f"{twice}.png", b"a copy"), (f"{_post('e621', 10)['md5']}.png", image_bytes("x"))],
    )
    layout, settings = profile(home.home, images)
    posts = pl.DataFrame(catalog_posts()).select("site", "post_id", "md5", "image_key")
    scan(layout, settings, posts.with_columns(sha512=pl.lit(None, pl.String)))
    whole = load_index(layout, settings)
    keyed = posts.join(sha512_table(), on=["site", "post_id"], how="left")
    for some in (keyed, keyed.head(3), keyed.tail(4)):
        keys = keys_of(some, sha512_table())
        subset = entries_for(layout, settings, keys)
        assert subset.height < whole.height or some.height == keyed.height
        assert locate(some, subset).equals(locate(some, whole))
    found = locate(keyed, whole)
    assert found.height == keyed.height  # every post is found, each way
    e621_10 = found.filter((pl.col("site") == "e621") & (pl.col("post_id") == 10))
    assert e621_10["offset"][0] >= 0  # from the tar


def test_a_rebuilt_shard_reads_the_size_only_of_images_it_did_not_hold(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Sizes come from the image files; an image whose md5 the shard being rebuilt held has
    the same bytes, so its size is taken from there."""
    from assets.captions import sizes

    out = tmp_path / "out"
    world.export(out)
    read: list[str] = []
    image_size = sizes.image_size

    def counted(path, offset, length):
        read.append(Path(path).stem)
        return image_size(path, offset, length)

    monkeypatch.setattr(sizes, "image_size", counted)
    world.posts["danbooru:12"]["tags"] = ["1girl", "a_new_tag"]
    world.embed(range(42, 44))
    world.refresh([*world.posts.values(), _post("e621", 13, 42), _post("e621", 14, 43)])
    result = world.export(out)
    assert result.incremental and result.shards["rebuilt"] == 2
    assert sorted(read) == sorted([_md5(42), _md5(43)])  # the new posts' images alone
    monkeypatch.setattr(sizes, "image_size", image_size)
    _same_as_afresh(world, out, tmp_path)
