"""scoretag from Python: the scored catalog, the heads, and scoring outside the pipeline.

Every function takes the profile the way the CLI does: a name (`demo`, `production`, `k8s`), or
None for `$SCORETAG_PROFILE` (else `demo`), with `home` and `config` as `--home` and `--config`
(`$SCORETAG_HOME`, `$SCORETAG_CONFIG`). A `Profile` from `load_profile()` is taken as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from orchestration.profile import Profile
from orchestration.profile import load_profile as _load_profile

if TYPE_CHECKING:
    import duckdb

    from assets.head.artifact import Head
    from orchestration.backbone import Backbone

ProfileRef = str | Profile | None


def load_profile(
    profile: ProfileRef = None, home: str | PathLike | None = None, config: str | None = None
) -> Profile:
    """The profile's settings and storage layout (nothing is created or written)."""
    if isinstance(profile, Profile):
        return profile
    return _load_profile(profile, home, config)


def open_catalog(
    profile: ProfileRef = None, home: str | PathLike | None = None, timeout_s: float | None = None
) -> duckdb.DuckDBPyConnection:
    """The scored catalog, read-only and without access to other files, as `scoretag query`
    opens it: tables posts, heads, scores, calibrations; views catalog, site_summary,
    head_summary. While a run writes it, waits up to `timeout_s` (default the profile's
    `[catalog] lock_timeout_s`). Close the connection when done: a reader keeps writers out."""
    from assets.catalog.queries import connect_read_only

    loaded = load_profile(profile, home)
    wait = loaded.settings.catalog.lock_timeout_s if timeout_s is None else timeout_s
    return connect_read_only(loaded.layout.catalog, wait)


def load_head(
    version: str | PathLike | None = None,
    profile: ProfileRef = None,
    home: str | PathLike | None = None,
) -> Head:
    """A head: the profile's active one (None), a registered version or a unique prefix of
    one, or a head directory (`weights.safetensors` + `card.json`)."""
    from assets.head import paths
    from assets.head.artifact import load_head as load_head_dir

    if version is not None and Path(version).is_dir():
        return load_head_dir(Path(version))
    registry = paths.registry(load_profile(profile, home).layout)
    if version is None:
        head = registry.active()
        if head is None:
            raise LookupError(
                "no active head: train one (`scoretag run`), or import one and activate it "
                "(`scoretag head import-laion`, `scoretag head activate`)"
            )
        return head
    return registry.load(str(version))


def score_embeddings(embeddings: np.ndarray, head: Head | None = None, **profile) -> np.ndarray:
    """Scores in [0, 1] (float32, one per row) of an (n, dim) array of the head's backbone's
    embeddings; rows are L2-normalised first. `head` defaults to the active head of the
    profile given by the `profile`/`home` keywords."""
    head = head if head is not None else load_head(None, **profile)
    return head.predict(np.asarray(embeddings))


def load_backbone(profile: ProfileRef = None, home: str | PathLike | None = None) -> Backbone:
    """The profile's image encoder on its device, built as the embeddings stage builds it."""
    from orchestration.backbone import load_backbone as build

    return build(load_profile(profile, home).settings.backbone)


def embed_images(
    paths: Iterable[str | PathLike],
    profile: ProfileRef = None,
    home: str | PathLike | None = None,
    backbone: Backbone | None = None,
    workers: int = 0,
) -> tuple[np.ndarray, pl.DataFrame]:
    """The profile's backbone's unit embeddings of image files, decoded as the pipeline decodes
    them (EXIF orientation, colour profiles, transparency on white, first frame).

    Returns (vectors, frame): `frame` has one row per path in order (`path`, `ok`, `reason`,
    `detail`), and `vectors` (fp16) one row per path that decoded (`frame["ok"]`): a file
    that cannot be used is reported with its reason, never dropped silently."""
    from assets.embeddings.embed import Plan, encoded

    loaded = load_profile(profile, home)
    backbone = backbone if backbone is not None else load_backbone(loaded)
    files = [str(Path(p)) for p in paths]
    locations = pl.DataFrame(
        {"path": files, "offset": [-1] * len(files), "length": [-1] * len(files)},
        schema={"path": pl.String, "offset": pl.Int64, "length": pl.Int64},
    )
    plan = Plan(
        batch_size=loaded.settings.backbone.batch_size,
        workers=workers,
        max_pixels=loaded.settings.embed.max_pixels,
        jpeg_draft=loaded.settings.embed.jpeg_draft,
    )
    vectors = np.empty((len(files), backbone.identity.embed_dim), np.float16)
    ok = np.zeros(len(files), bool)
    reasons = [""] * len(files)
    details = [""] * len(files)
    if files:
        for positions, batch, failures in encoded(locations, backbone, plan):
            vectors[positions] = batch
            ok[positions] = True
            for position, reason, detail in failures:
                reasons[position], details[position] = reason, detail
    frame = pl.DataFrame({"path": files, "ok": ok, "reason": reasons, "detail": details})
    return vectors[ok], frame


def score_images(
    paths: Iterable[str | PathLike],
    head: Head | None = None,
    profile: ProfileRef = None,
    home: str | PathLike | None = None,
    workers: int = 0,
) -> pl.DataFrame:
    """Aesthetic scores of image files with a head (default: the profile's active one) on the
    profile's backbone: one row per path (`path`, `score` in [0, 1] or null, `reason`,
    `detail` for a file that could not be used). Refuses a head made for another backbone."""
    from assets.head.artifact import require_backbone

    loaded = load_profile(profile, home)
    head = head if head is not None else load_head(None, loaded)
    backbone = load_backbone(loaded)
    require_backbone(head, asdict(backbone.identity))
    vectors, frame = embed_images(paths, loaded, backbone=backbone, workers=workers)
    scores = np.full(frame.height, np.nan, np.float32)
    scores[frame["ok"].to_numpy()] = head.predict(vectors)
    return frame.select(
        "path",
        score=pl.Series(scores).fill_nan(None),
        reason=pl.col("reason"),
        detail=pl.col("detail"),
    )
