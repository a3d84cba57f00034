"""Planted data for the aesthetic head: CLIP-like unit embeddings with a known quality.

Real embeddings come in styles of very different sizes (a few dominate a booru, many are
rare), each a tight anisotropic blob on the unit sphere; quality depends partly on the style
and partly on a direction inside it. The generator plants exactly that, so samplers and heads
can be compared against a truth that is known:

* cluster shares ~ Dirichlet(0.3 x ones(clusters)): a few large styles, a long tail;
* centres: random Gaussian directions (unit vectors);
* points: centre + Gaussian noise whose per-dimension std is drawn per cluster,
  log-uniformly in [0.15, 1.5] x the centre's per-coordinate scale (1 / sqrt(dim)); then each
  point is L2-normalised;
* planted quality: the linear term X @ w (w a fixed random unit direction), standardised,
  plus a per-cluster offset ~ N(0, 0.5) (0.5 is the std); the sum standardised to mean 0,
  std 1;
* labels: clip(round(3 + 1.2 q + N(0, 0.6)), 1, 5), 0.6 the std of the labeler noise.

Why the noise range is [0.15, 1.5] rather than a tighter [0.05, 0.5]: with the tighter one the
noise vector is ~0.23 of the centre's length, so two points of a cluster have a cosine of about
0.95 and nearly every pair would count as a near-duplicate at the usual 0.95 cut-off. With
[0.15, 1.5] the noise is ~0.7 of the centre's length: a point's cosine to its centre is ~0.82
and to another point of its cluster ~0.67, while points of different clusters sit near 0.

Why the linear term is standardised before the offsets are added: a unit direction meets a
unit embedding at a cosine of ~1/sqrt(dim), so raw it would have a std of a few hundredths
against the offsets' 0.5, and quality would be almost only each style's level. Standardised,
the direction inside the styles carries about 80% of the variance, the styles' levels 20%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NOISE_RANGE = (0.15, 1.5)  # per-dimension noise std, in units of the centre's coordinate scale
OFFSET_STD = 0.5
LABEL_NOISE_STD = 0.6
LABEL_SLOPE = 1.2
CHUNK = 8_192  # rows generated at a time, so the float32 noise never doubles peak memory


@dataclass
class Planted:
    """A planted data set; `test_index` and `pool_index` split rows 0..n-1 between them."""

    X: np.ndarray  # (n, dim) float32, unit rows
    quality: np.ndarray  # (n,) float64, the planted q, mean 0 and std 1
    labels: np.ndarray  # (n,) int64 in 1..5
    cluster: np.ndarray  # (n,) int64 in 0..clusters-1
    test_index: np.ndarray  # (test,) sorted
    pool_index: np.ndarray  # (n - test,) sorted


def planted(
    n: int = 60_000,
    dim: int = 768,
    clusters: int = 50,
    alpha: float = 0.3,
    test: int = 10_000,
    seed: int = 0,
) -> Planted:
    """Draw `n` unit embeddings in `clusters` styles with a planted quality and 1-5 labels.

    The same arguments always give the same arrays. `test` rows, chosen with the seed, form the
    fixed test set; the other rows are the pool that samplers draw labels from.
    """
    if not 0 <= test <= n:
        raise ValueError(f"test must be in 0..n, got test={test}, n={n}")
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.full(clusters, alpha))
    cluster = rng.choice(clusters, size=n, p=shares).astype(np.int64)

    centres = rng.standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    low, high = np.log(NOISE_RANGE[0]), np.log(NOISE_RANGE[1])
    noise_std = np.exp(rng.uniform(low, high, (clusters, dim))) / np.sqrt(dim)
    centres32, noise32 = centres.astype(np.float32), noise_std.astype(np.float32)

    X = np.empty((n, dim), np.float32)
    for start in range(0, n, CHUNK):
        part = cluster[start : start + CHUNK]
        block = rng.standard_normal((len(part), dim), dtype=np.float32)
        block *= noise32[part]
        block += centres32[part]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        X[start : start + len(part)] = block

    direction = rng.standard_normal(dim)
    direction /= np.linalg.norm(direction)
    offsets = rng.normal(0.0, OFFSET_STD, clusters)
    # float32 matvec: a float64 copy of X would be 370 MB at the default size.
    linear = (X @ direction.astype(np.float32)).astype(np.float64)
    raw = (linear - linear.mean()) / linear.std() + offsets[cluster]
    quality = (raw - raw.mean()) / raw.std()

    noisy = 3.0 + LABEL_SLOPE * quality + rng.normal(0.0, LABEL_NOISE_STD, n)
    labels = np.clip(np.rint(noisy), 1, 5).astype(np.int64)

    test_index = np.sort(rng.choice(n, size=test, replace=False))
    in_test = np.zeros(n, bool)
    in_test[test_index] = True
    return Planted(
        X=X,
        quality=quality,
        labels=labels,
        cluster=cluster,
        test_index=test_index,
        pool_index=np.flatnonzero(~in_test),
    )
