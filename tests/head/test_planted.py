from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from assets.head.planted import planted


@pytest.fixture(scope="module")
def data():
    return planted(n=6_000, dim=64, test=1_000, seed=3)


def test_shapes_and_dtypes(data) -> None:
    assert data.X.shape == (6_000, 64)
    assert data.X.dtype == np.float32
    for field in (data.quality, data.labels, data.cluster):
        assert field.shape == (6_000,)
    assert data.test_index.shape == (1_000,)
    assert data.pool_index.shape == (5_000,)


def test_rows_are_unit_vectors(data) -> None:
    np.testing.assert_allclose(np.linalg.norm(data.X, axis=1), 1.0, atol=1e-5)


def test_test_and_pool_split_every_row(data) -> None:
    assert np.intersect1d(data.test_index, data.pool_index).size == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([data.test_index, data.pool_index])), np.arange(6_000)
    )


def test_labels_and_quality(data) -> None:
    assert set(np.unique(data.labels)) <= {1, 2, 3, 4, 5}
    assert len(np.unique(data.labels)) >= 4
    assert abs(data.quality.mean()) < 1e-9
    assert data.quality.std() == pytest.approx(1.0)
    assert stats.spearmanr(data.labels, data.quality)[0] > 0.7


def test_clusters_are_imbalanced(data) -> None:
    shares = np.bincount(data.cluster, minlength=50) / len(data.cluster)
    assert data.cluster.min() >= 0 and data.cluster.max() < 50
    assert shares.max() > 3 * np.median(shares)


def test_clusters_are_tight_but_not_duplicates(data) -> None:
    X, cluster = data.X[:1_000], data.cluster[:1_000]
    cosine = X @ X.T
    same = (cluster[:, None] == cluster[None, :]) & ~np.eye(len(X), dtype=bool)
    different = cluster[:, None] != cluster[None, :]
    assert cosine[same].mean() > cosine[different].mean() + 0.3
    assert cosine[same].max() < 0.95  # the usual near-duplicate cut-off


def test_same_seed_same_data() -> None:
    a = planted(n=500, dim=16, test=100, seed=7)
    b = planted(n=500, dim=16, test=100, seed=7)
    c = planted(n=500, dim=16, test=100, seed=8)
    for name in ("X", "quality", "labels", "cluster", "test_index", "pool_index"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.X, c.X)


def test_test_larger_than_n_is_refused() -> None:
    with pytest.raises(ValueError):
        planted(n=10, dim=4, test=11)
