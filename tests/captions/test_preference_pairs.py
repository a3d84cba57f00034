"""`scoretag export --format preference-pairs` on the hand-made catalog (conftest.py), read
back with Hugging Face `datasets` as a Pick-a-Pic v2 style dataset, and as Diffusion-DPO's
loader would train on it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from PIL import Image

from assets.captions.preference import HeadPairs, head_pairs, human_pairs, shared_caption
from assets.labels.pairs import PAIRS
from assets.labels.paths import pairs_path
from scoretag.cli import cli
from tests.captions.conftest import catalog_posts

datasets = pytest.importorskip("datasets", reason="reading the export needs Hugging Face datasets")

# (labeler, left, right, outcome): each labeler's latest judgment of an unordered pair.
JUDGED = [
    ("alice", "danbooru:1", "danbooru:5", "right"),
    ("bob", "danbooru:1", "danbooru:5", "tie"),  # the same pair, another labeler
    ("alice", "e621:7", "danbooru:7", "left"),
    ("bob", "e621:4", "danbooru:1", "left"),  # rated e and g
    ("bob", "e621:2", "e621:10", "left"),  # e621:10 has no image file
    ("carol", "danbooru:9", "danbooru:1", "right"),  # danbooru:9 is deleted
    ("carol", "danbooru:1", "danbooru:999", "tie"),  # not in the catalog
]
LEFT_OUT = {"image_not_found": 1, "post_deleted": 1, "post_not_in_catalog": 1}


def _pairs_file(home) -> Path:
    rows = [
        {
            "left_key": left,
            "right_key": right,
            "outcome": outcome,
            "winner_key": {"left": left, "right": right}.get(outcome),
            "labeler": who,
            "judgments": 1,
            "created_at": f"2026-02-0{i + 1}T10:00:00+00:00",
            "in_pool": True,
        }
        for i, (who, left, right, outcome) in enumerate(JUDGED)
    ]
    path = pairs_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows, schema=PAIRS).write_parquet(path)
    return path


def _run(home, *args: str):
    return CliRunner().invoke(cli, ["--profile", "demo", "--home", str(home.home), *args])


def _export(home, out: Path, *extra: str) -> dict:
    result = _run(home, "export", "--format", "preference-pairs", *extra, "--out", str(out))
    assert result.exit_code == 0, result.output
    return json.loads((out / "manifest.json").read_text())


def _load(out: Path, manifest: dict):
    files = [str(out / s["name"]) for s in manifest["shards"]]
    return datasets.load_dataset("parquet", data_files=files, split="train")


def _pixels(data: bytes) -> tuple:
    with Image.open(io.BytesIO(data)) as image:
        return image.size, image.convert("RGB").tobytes()


def _source_image(home, post_key: str) -> bytes:
    post = next(p for p in catalog_posts() if p["post_key"] == post_key)
    name = "pony.png" if post["md5"] is None else f"{post['md5']}.png"
    return (home.images / name).read_bytes()


def test_human_pairs_load_as_pick_a_pic(home, tmp_path: Path):
    _pairs_file(home)
    out = tmp_path / "dpo"
    manifest = _export(home, out, "--shard-size", "2")
    data = _load(out, manifest)
    assert data.num_rows == manifest["rows"] == 4
    assert len(manifest["shards"]) == 2
    assert manifest["sources"] == {"human": 4, "head": 0}
    assert manifest["ties"] == 1 and manifest["labelers"] == {"alice": 2, "bob": 2}
    assert manifest["left_out"] == LEFT_OUT
    assert manifest["missing_images"] == LEFT_OUT  # one post behind each
    assert data.features["jpg_0"].dtype == "binary"  # bytes, as Pick-a-Pic v2 stores them
    rows = {(r["user_id"], r["image_0_uid"], r["image_1_uid"]): r for r in data}
    assert set(rows) == {(w, a, b) for w, a, b, _ in JUDGED[:4]}
    right = rows["alice", "danbooru:1", "danbooru:5"]
    assert (right["label_0"], right["label_1"], right["best_image_uid"]) == (0.0, 1.0, "danbooru:5")
    tie = rows["bob", "danbooru:1", "danbooru:5"]
    assert (tie["label_0"], tie["label_1"], tie["best_image_uid"]) == (0.5, 0.5, None)
    left = rows["alice", "e621:7", "danbooru:7"]
    assert (left["label_0"], left["label_1"], left["best_image_uid"]) == (1.0, 0.0, "e621:7")
    # the tags both posts share, no score tags; each side's own caption beside it
    assert left["caption"] == "rating_safe, hatsune miku, vocaloid, artist 7, 1girl, long hair"
    assert left["caption_0"].startswith("rating_safe, source_furry, hatsune miku")
    assert "e621 tag 7" in left["caption_0"] and "danbooru tag 7" in left["caption_1"]
    assert rows["bob", "e621:4", "danbooru:1"]["caption"] == "1girl, long hair"  # e and g
    assert manifest["empty_captions"] == 0
    for row in data:
        assert row["source"] == "human" and row["has_label"] and row["are_different"]
        assert row["label_0"] + row["label_1"] == 1.0
        assert "score_" not in row["caption"]
        for side in ("0", "1"):
            source = _source_image(home, row[f"image_{side}_uid"])
            assert row[f"jpg_{side}"] == source  # the file's own bytes, not re-encoded
            assert _pixels(row[f"jpg_{side}"]) == _pixels(source)
    assert str(tie["created_at"]).startswith("2026-02-02 10:00:00")
    again = _run(
        home, "export", "--format", "preference-pairs", "--shard-size", "2", "--out", str(out)
    )
    assert again.exit_code == 0 and "0 written, 2 unchanged, 0 removed" in again.output


def _dpo_training_pairs(data) -> list[tuple[bytes, bytes]]:
    """(preferred, other) image bytes as Diffusion-DPO trains on them: train.py keeps only
    the rows whose label_0 is 0 or 1 (ties dropped; SalesforceAIResearch/DiffusionDPO,
    train.py lines 855-861 at 5233e75, and only when the dataset's name contains
    "pickapic"), and puts jpg_0 first unless label_0 is 0 (lines 782-784; diffusers'
    examples/research_projects/diffusion_dpo/train_diffusion_dpo.py does the same and drops
    no tie)."""
    kept = [r for r in data if r["label_0"] in (0, 1)]
    return [
        (r["jpg_0"], r["jpg_1"]) if r["label_0"] != 0 else (r["jpg_1"], r["jpg_0"]) for r in kept
    ]


def test_diffusion_dpo_trains_on_the_winners(home, tmp_path: Path):
    _pairs_file(home)
    out = tmp_path / "dpo"
    data = _load(out, _export(home, out))
    trained = _dpo_training_pairs(data)
    decided = [r for r in data if r["best_image_uid"] is not None]
    assert len(trained) == len(decided) == 3  # the tie is not trained on
    for (preferred, other), row in zip(trained, decided, strict=True):
        loser = row["image_1_uid"] if row["best_image_uid"] == row["image_0_uid"] else None
        loser = loser or row["image_0_uid"]
        assert _pixels(preferred) == _pixels(_source_image(home, row["best_image_uid"]))
        assert _pixels(other) == _pixels(_source_image(home, loser))


def test_head_pairs_are_marked_and_above_the_margin(home, tmp_path: Path):
    _pairs_file(home)
    out = tmp_path / "dpo"
    # The 19 scored live images, best first, each paired with the one 9 places below: gaps
    # of 0.4, but 0.5 for e621:10-danbooru:5, e621:7-danbooru:2 and danbooru:6-danbooru:1.
    manifest = _export(home, out, "--head-pairs", "3", "--margin", "0.45")
    assert manifest["head_pairs"] == {"requested": 3, "margin": 0.45, "eligible": 3}
    data = _load(out, manifest).filter(lambda r: r["source"] == "head")
    assert data.num_rows == manifest["sources"]["head"] == 2  # e621:10 has no image file
    assert manifest["left_out"] == {**LEFT_OUT, "image_not_found": 2}
    assert manifest["missing_images"] == LEFT_OUT  # e621:10, in a human and a head pair
    pairs = {frozenset((r["image_0_uid"], r["image_1_uid"])) for r in data}
    assert pairs == {frozenset(("e621:7", "danbooru:2")), frozenset(("danbooru:6", "danbooru:1"))}
    for row in data:
        assert row["user_id"] == "head:h1" and row["created_at"] is None
        assert abs(row["score_0"] - row["score_1"]) > 0.45
        better = row["image_0_uid"] if row["score_0"] > row["score_1"] else row["image_1_uid"]
        assert row["best_image_uid"] == better and row["label_0"] in (0.0, 1.0)
    assert {r["label_0"] for r in data} == {0.0, 1.0}  # the better side alternates
    assert manifest["command"].endswith(f"--head-pairs 3 --margin 0.45 --out {out}")


def test_filter_and_nothing_to_export(home, tmp_path: Path):
    nothing = _run(home, "export", "--format", "preference-pairs", "--out", str(tmp_path / "a"))
    assert nothing.exit_code != 0 and "no pairs to export" in nothing.output
    too_far = _run(
        home,
        "export",
        "--format",
        "preference-pairs",
        "--head-pairs",
        "2",
        "--margin",
        "0.9",
        "--out",
        str(tmp_path / "a"),
    )
    assert too_far.exit_code != 0 and "no head-ranked pair has a score gap above 0.9" in " ".join(
        too_far.output.split()
    )
    _pairs_file(home)
    manifest = _export(home, tmp_path / "b", "--ratings", "g")
    assert manifest["rows"] == 3  # e621:4 (rated e) is outside
    assert manifest["left_out"] == {
        "outside_filter": 2,  # e621:4 vs danbooru:1, and e621:2 vs e621:10 (all but one e)
        "post_deleted": 1,
        "post_not_in_catalog": 1,
    }
    wrong = _run(home, "export", "--format", "hf", "--head-pairs", "2", "--out", str(tmp_path))
    assert wrong.exit_code != 0 and "only preference-pairs" in wrong.output


def test_head_pairing_spans_the_ranking_and_skips_judged_pairs():
    scored = pl.DataFrame(
        {"post_key": [f"p{i}" for i in range(8)], "score": [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]}
    )
    taken = pl.Series(["p0|p4"])
    chosen, eligible = head_pairs(scored, HeadPairs(5, 0.45), "h", taken)
    assert (
        eligible == 3
    )  # every gap is 0.5 (the i-th best and the i-th below the middle), p0-p4 judged
    pairs = set(zip(chosen["image_0_uid"], chosen["image_1_uid"], strict=True))
    assert pairs == {("p1", "p5"), ("p6", "p2"), ("p3", "p7")}


def test_human_pairs_refuse_an_unknown_outcome_and_count_it():
    frame = pl.DataFrame(
        [
            {"left_key": "a", "right_key": "b", "outcome": "left", "labeler": "x"},
            {"left_key": "a", "right_key": "c", "outcome": "skip", "labeler": "x"},
        ],
        schema={**PAIRS},
        strict=False,
    )
    chosen, left_out = human_pairs(frame)
    assert chosen["label_0"].to_list() == [1.0] and left_out == {"unknown_outcome": 1}
    with pytest.raises(ValueError, match="lacks the columns"):
        human_pairs(frame.drop("labeler"))


def test_shared_caption_keeps_the_first_sides_order():
    assert shared_caption("a, b, c, d", "d, x, b") == "b, d"
    assert shared_caption("", "a") == ""


def test_judgment_times_read_as_utc():
    times = ["2026-02-02T10:00:00.123+00:00", "2026-02-02T12:00:00+02:00", "2026-02-02T10:00:00"]
    frame = pl.DataFrame(
        [
            {
                "left_key": "a",
                "right_key": str(i),
                "outcome": "tie",
                "labeler": "x",
                "created_at": t,
            }
            for i, t in enumerate([*times, "yesterday"])
        ],
        schema={**PAIRS},
        strict=False,
    )
    chosen, _ = human_pairs(frame)
    read = [t and t.isoformat() for t in chosen.sort("image_1_uid")["created_at"].to_list()]
    assert read == [
        "2026-02-02T10:00:00.123000+00:00",
        "2026-02-02T10:00:00+00:00",
        "2026-02-02T10:00:00+00:00",
        None,  # unreadable: null, not a failed export
    ]
