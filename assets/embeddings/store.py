"""The embedding store: parquet shards per backbone, keyed by image_key.

    <stage dir>/<backbone id>/identity.json
    <stage dir>/<backbone id>/shards/<site>/<raw file>/part-00000.parquet
    <stage dir>/<backbone id>/failures/<site>/<raw file>.parquet   (embedding_failures)
    <stage dir>/<backbone id>/requested/<site>/<raw file>.parquet  (what a run was asked)
    <stage dir>/<backbone id>/evaluations/..., prompts/...  (other sections: see `section`)

A shard holds `image_key` (string) and `embedding`: the fp16, L2-normalised vector as one
fixed-size binary value (2 x dim bytes). pyarrow reads that column back as a single buffer,
which numpy views without a copy (`scoretag bench catalog` times reading every vector:
`floors.read_vectors_seconds`). Every
shard carries its backbone's identity in the parquet metadata, checked on read. Shards are
written whole or not at all: a temporary file, then a rename, on a local disk; one PUT on object
storage.

The stage dir is a local folder or, when the profile names an object root, a URL on any fsspec
filesystem (s3://, gs://; memory:// in tests), so GPU workers on many machines share one store;
see orchestration/objectstore.py.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from orchestration import objectstore
from orchestration.backbone import Identity
from orchestration.objectstore import Location

if TYPE_CHECKING:
    import duckdb

IDENTITY_KEY = b"scoretag.backbone"
# Where a declared local copy's weights came from ({"pretrained", "checkpoint", "sha256"}):
# provenance, beside the identity and never part of it.
WEIGHTS_KEY = b"scoretag.weights"
FAILURES: dict[str, pl.DataType] = {
    "image_key": pl.String,
    "path": pl.String,
    "reason": pl.String,  # one of decode.REASONS
    "detail": pl.String,
    "failed_at": pl.Datetime("us", "UTC"),
}
_PART = re.compile(r"^part-(\d{5,})\.parquet$")


class IdentityMismatch(ValueError):
    """Embeddings of another backbone where this one's were expected."""


class EmbeddingStore:
    """The shards of one backbone under the embeddings stage folder."""

    def __init__(
        self,
        stage_dir: str | Location,
        identity: Identity,
        provenance: dict[str, str] | None = None,
        section: str = "shards",
    ):
        self.identity = identity
        self.provenance = provenance
        self.dir = objectstore.location(stage_dir) / identity.id
        # Where the shards live under the backbone's folder: `shards` holds the posts' images;
        # the evaluation stage keeps generated images' and prompts' vectors in sections of
        # their own, so that nothing reading the posts' shards ever sees them.
        self.section = section

    @property
    def url(self) -> str:
        return objectstore.url(self.dir)

    def ensure(self) -> EmbeddingStore:
        """Create the folder with its identity file; refuse one holding another identity."""
        path = self.dir / "identity.json"
        if path.is_file():
            found = Identity.from_json(path.read_text())
            if found != self.identity:
                raise IdentityMismatch(f"{self.dir} holds embeddings of {found}")
        else:
            objectstore.write_bytes(path, self.identity.to_json().encode())
        return self

    def _kept(self, what: str) -> str:
        """The folder of a section's failures or requested keys."""
        return what if self.section == "shards" else f"{self.section}-{what}"

    def shard_dir(self, partition: str) -> Location:
        return self.dir / self.section / partition

    def remove_orphans(self, partition: str) -> list[Location]:
        """Delete the shard a killed run of this partition left half-written."""
        return objectstore.remove_orphans(self.shard_dir(partition))

    def failures_path(self, partition: str) -> Location:
        """The embedding_failures rows of a partition's latest run."""
        return self.dir / self._kept("failures") / f"{partition}.parquet"

    def requested_path(self, partition: str) -> Location:
        """The image_keys a partition's latest run was asked to embed."""
        return self.dir / self._kept("requested") / f"{partition}.parquet"

    def write_failures(self, partition: str, failures: pl.DataFrame) -> Location:
        return objectstore.write_parquet(failures, self.failures_path(partition))

    def write_requested(self, partition: str, keys: pl.DataFrame) -> Location:
        return objectstore.write_parquet(keys, self.requested_path(partition))

    def requested(self, partition: str) -> pl.DataFrame | None:
        """The image_keys of the partition's latest run; None if no run has finished."""
        path = self.requested_path(partition)
        return objectstore.read_parquet(path) if path.is_file() else None

    def partition_failures(self, partition: str) -> pl.DataFrame:
        path = self.failures_path(partition)
        return objectstore.read_parquet(path) if path.is_file() else pl.DataFrame(schema=FAILURES)

    def failures(self) -> pl.DataFrame:
        """The embedding_failures table: every partition's failures."""
        paths = sorted((self.dir / self._kept("failures")).glob("*/*.parquet"))
        return objectstore.read_parquet(paths) if paths else pl.DataFrame(schema=FAILURES)

    def shards(self, partition: str | None = None) -> list[Location]:
        """Committed shards of one partition (`<site>/<file>`), or of all."""
        pattern = "part-*.parquet" if partition else "*/*/part-*.parquet"
        base = self.shard_dir(partition) if partition else self.dir / self.section
        return sorted(p for p in base.glob(pattern) if _PART.match(p.name))

    def keys(self, partition: str | None = None) -> pl.Series:
        """Every image_key embedded so far (all partitions: an image is embedded once)."""
        paths = self.shards(partition)
        if not paths:
            return pl.Series("image_key", [], pl.String)
        return objectstore.read_parquet(paths, columns=["image_key"])["image_key"]

    def shards_for(self, con: duckdb.DuckDBPyConnection) -> str:
        """The glob of every shard for DuckDB's read_parquet on `con`, whose filesystem is
        registered there when the store is on object storage."""
        objectstore.register(con, self.dir)
        return f"{objectstore.url(self.dir / self.section)}/**/*.parquet"

    def write_shard(self, partition: str, keys: list[str], vectors: np.ndarray) -> Location:
        """Commit one shard: the next part number of the partition."""
        if vectors.dtype != np.float16 or vectors.shape != (len(keys), self.identity.embed_dim):
            raise ValueError(
                f"expected {len(keys)} x {self.identity.embed_dim} float16 vectors, "
                f"got {vectors.shape} {vectors.dtype}"
            )
        existing = self.shards(partition)
        number = int(_PART.match(existing[-1].name).group(1)) + 1 if existing else 0
        path = self.shard_dir(partition) / f"part-{number:05d}.parquet"
        table = embedding_table(self.identity, vectors, self.provenance, image_key=keys)
        return objectstore.write_table(table, path, **WRITE_OPTIONS)

    def read(self, paths: list[Location] | None = None) -> tuple[pl.Series, np.ndarray]:
        """Keys and their vectors (n x dim float16) from these shards (default: all),
        refusing any shard written by another backbone."""
        paths = self.shards() if paths is None else paths
        if not paths:
            return pl.Series("image_key", [], pl.String), np.empty(
                (0, self.identity.embed_dim), np.float16
            )
        for path in paths:
            self.verify(path)
        table = _read_table(paths, columns=["image_key", "embedding"])
        return pl.Series("image_key", table["image_key"]), vectors_of(
            table["embedding"], self.identity.embed_dim
        )

    def lookup(self, keys: pl.Series) -> tuple[pl.Series, np.ndarray]:
        """The vectors of these image_keys (those embedded; each once), read with a filter
        so that a large store is not loaded whole."""
        paths = self.shards()
        wanted = keys.drop_nulls().unique()
        if not paths or wanted.len() == 0:
            return self.read([])
        for path in paths:
            self.verify(path)
        table = _read_table(
            paths,
            columns=["image_key", "embedding"],
            filters=pc.field("image_key").isin(wanted.to_arrow()),
        )
        found = pl.Series("image_key", table["image_key"])
        first = found.is_first_distinct().to_numpy()
        vectors = vectors_of(table["embedding"], self.identity.embed_dim)
        return found.filter(first), vectors[first]

    def vectors(self, path: Location) -> np.ndarray:
        """One shard's vectors (n x dim float16), read in the calling thread."""
        # memory_map: local pages are decompressed straight from the page cache, not copied in.
        local = not objectstore.is_remote(path)
        table = _read_table([path], columns=["embedding"], memory_map=local, use_threads=False)
        return vectors_of(table["embedding"], self.identity.embed_dim)

    def schema(self, path: Location) -> pa.Schema:
        sources, fs = objectstore.arrow_sources([path])
        return pq.read_schema(sources[0], filesystem=fs)

    def verify(self, path: Location) -> None:
        metadata = self.schema(path).metadata or {}
        raw = metadata.get(IDENTITY_KEY)
        if raw is None:
            raise IdentityMismatch(f"{path} has no backbone identity")
        found = Identity.from_json(raw.decode())
        if found != self.identity:
            raise IdentityMismatch(f"{path} was embedded by {found.id}, not {self.identity.id}")


def embedding_table(
    identity: Identity,
    vectors: np.ndarray,
    provenance: dict[str, str] | None = None,
    **columns: list[str],
) -> pa.Table:
    """A shard's table: the string `columns` (image_key, ...), then `embedding`, the fp16
    vectors as fixed-size binary; the backbone identity in the schema metadata, and beside it
    the provenance of a declared local copy of the weights (its path and sha256)."""
    width = 2 * identity.embed_dim
    embedding = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(vectors), [None, pa.py_buffer(np.ascontiguousarray(vectors).data)]
    )
    arrays = {name: pa.array(values, pa.string()) for name, values in columns.items()}
    metadata = {IDENTITY_KEY: identity.to_json().encode()}
    if provenance:
        metadata[WEIGHTS_KEY] = json.dumps(provenance, sort_keys=True).encode()
    return pa.table({**arrays, "embedding": embedding}).replace_schema_metadata(metadata)


# Vectors do not compress (zstd saves some 8%) and decompressing them would cost more than
# reading them: only the keys are compressed.
WRITE_OPTIONS = {
    "compression": {"image_key": "zstd", "path": "zstd", "embedding": "none"},
    "use_dictionary": ["image_key", "path"],
    "write_statistics": False,
}


def _read_table(paths: list[Location], **options) -> pa.Table:
    sources, fs = objectstore.arrow_sources(paths)
    if fs is None and len(sources) == 1:
        return pq.read_table(sources[0], **options)
    return pq.read_table(sources, filesystem=fs, **options)


def vectors_of(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """A fixed-size binary column as an (n, dim) float16 array, without a per-row step."""
    array = column
    if isinstance(column, pa.ChunkedArray):
        # combine_chunks copies even a single chunk: a shard's one row group is used in place.
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if array.null_count:
        raise ValueError("embedding column has nulls")
    width = 2 * dim
    if array.type.byte_width != width:
        raise ValueError(f"embeddings are {array.type.byte_width} bytes, expected {width}")
    data = np.frombuffer(array.buffers()[1], np.uint8)
    data = data[array.offset * width : (array.offset + len(array)) * width]
    return data.view(np.float16).reshape(len(array), dim)
