"""A post's style, from its tags, through a configurable map: the pool is stratified by it so
that rare styles (pixel art, 3D, traditional media) are present among the posts people rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

OTHER = "other"


def style(tags: pl.Expr, styles: Mapping[str, Sequence[str]]) -> pl.Expr:
    """The first style (in the map's order) whose tags the post carries, else "other"."""
    matches = [
        pl.when(tags.list.eval(pl.element().is_in(list(names))).list.any()).then(pl.lit(name))
        for name, names in styles.items()
    ]
    return pl.coalesce(*matches, pl.lit(OTHER))
