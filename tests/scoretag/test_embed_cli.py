"""`scoretag embed`: a folder, a tar shard and a broken file through the demo's backbone,
checked against open_clip's own model and transform, the store's identity, failure rows,
and `scoretag head predict` reading the output."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import scoretag
from assets.embeddings.store import IDENTITY_KEY, EmbeddingStore, vectors_of
from orchestration.backbone import identity
from scoretag.cli import cli
from tests.scoretag.test_api import _numpy_scores, _open_clip_embeddings, _picture, _register_head


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _inputs(tmp_path: Path) -> tuple[Path, Path, dict[str, Path]]:
    """A folder (two pictures, one in a subfolder, a broken one, a text file that is not
    looked at) and a tar shard (a member named by its md5, one with a json sidecar, one
    without a key). Returns the folder, the shard, and each expected path -> a plain file
    with the same bytes, for the reference."""
    folder, plain = tmp_path / "pictures", tmp_path / "plain"
    (folder / "sub").mkdir(parents=True)
    plain.mkdir()
    expected = {
        str(_picture(folder / "a.png", (320, 240), 1)): folder / "a.png",
        str(_picture(folder / "sub" / "b.jpg", (97, 301), 2)): folder / "sub" / "b.jpg",
    }
    (folder / "broken.png").write_bytes((folder / "a.png").read_bytes()[:200])  # truncated
    (folder / "notes.txt").write_text("not a picture")
    shard = tmp_path / "shard.tar"
    members = {}
    for i, name in enumerate(["named", "sidecar", "plain"]):
        path = _picture(plain / f"{name}.jpg", (224 + 40 * i, 224), 10 + i)
        data = path.read_bytes()
        md5 = hashlib.md5(data).hexdigest()
        members[name] = (md5 if name == "named" else f"{i:05d}", data, md5, path)
    with tarfile.open(shard, "w") as tar:
        for name, (key, data, md5, _) in members.items():
            for member, payload in [(f"s/{key}.jpg", data)] + (
                [(f"s/{key}.json", json.dumps({"md5": md5}).encode())] if name == "sidecar" else []
            ):
                info = tarfile.TarInfo(member)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    for key, _, _, path in members.values():
        expected[f"{shard}/s/{key}.jpg"] = path
    return folder, shard, expected


def _embed(home: Path, *args: str):
    return CliRunner().invoke(
        cli, ["--home", str(home), "embed", *args, "--workers", "0"], catch_exceptions=False
    )


def test_embed_writes_a_shard_laid_file_with_failures_beside_it(tmp_path, home):
    folder, shard, expected = _inputs(tmp_path)
    out = tmp_path / "out" / "vectors.parquet"
    result = _embed(home, str(folder), str(shard), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Embedded 5 images" in result.output and "1 failed" in result.output

    table = pq.read_table(out)
    backbone = identity(scoretag.load_profile("demo", home).settings.backbone)
    # Laid out as a store shard: its identity, byte for byte, and its embedding type.
    assert table.schema.metadata[IDENTITY_KEY] == backbone.to_json().encode()
    assert table.schema.field("embedding").type == pa.binary(2 * backbone.embed_dim)
    EmbeddingStore(tmp_path / "store", backbone).verify(out)
    assert table.column_names == ["image_key", "path", "embedding"]

    rows = pl.from_arrow(table.select(["image_key", "path"]))
    assert sorted(rows["path"]) == sorted(expected)
    named = hashlib.md5((tmp_path / "plain" / "named.jpg").read_bytes()).hexdigest()
    keys = dict(zip(rows["path"], rows["image_key"], strict=True))
    # The md5 naming a member (or given by its sidecar), else the path.
    assert keys[f"{shard}/s/{named}.jpg"] == named
    sidecar_md5 = hashlib.md5((tmp_path / "plain" / "sidecar.jpg").read_bytes()).hexdigest()
    assert keys[f"{shard}/s/00001.jpg"] == sidecar_md5
    assert keys[f"{shard}/s/00002.jpg"] == f"{shard}/s/00002.jpg"
    assert keys[str(folder / "a.png")] == str(folder / "a.png")

    vectors = vectors_of(table["embedding"], backbone.embed_dim).astype(np.float32)
    reference = _open_clip_embeddings([expected[p] for p in rows["path"]])
    np.testing.assert_allclose(vectors, reference, atol=2e-3)

    failures = pl.read_parquet(out.with_name("vectors.failures.parquet"))
    assert failures.select("path", "reason").rows() == [(str(folder / "broken.png"), "truncated")]
    assert failures["detail"][0]


def test_head_predict_reads_what_embed_writes(tmp_path, home):
    folder, _, expected = _inputs(tmp_path)
    out = tmp_path / "vectors.parquet"
    assert _embed(home, str(folder), "--out", str(out)).exit_code == 0
    weights = _register_head(home)
    version = scoretag.load_head(None, home=home).version
    scores = tmp_path / "scores.npy"
    result = CliRunner().invoke(
        cli,
        ["--home", str(home), "head", "predict", "--head", version]
        + ["--embeddings", str(out), "--out", str(scores)],
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    vectors = vectors_of(table["embedding"], 64)
    np.testing.assert_allclose(np.load(scores), _numpy_scores(vectors, weights), atol=1e-5)
    assert len(np.load(scores)) == 2


def test_no_images_is_an_empty_file_not_an_error(tmp_path, home):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "none.parquet"
    result = _embed(home, str(empty), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).num_rows == 0


def test_options_are_checked(tmp_path, home):
    result = CliRunner().invoke(
        cli, ["--home", str(home), "embed", str(tmp_path), "--out", str(tmp_path / "x.npy")]
    )
    assert result.exit_code != 0 and "give a .parquet file" in result.output
    result = CliRunner().invoke(
        cli,
        ["--home", str(home), "embed", str(tmp_path), "--out", str(tmp_path / "x.parquet")]
        + ["--device", "gpu"],
    )
    assert result.exit_code != 0 and "--device" in result.output
