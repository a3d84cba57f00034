from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from assets.head.metrics import (
    calibration,
    kendall_tau_b,
    mae,
    mse,
    pairwise_accuracy,
    quadratic_weighted_kappa,
    report,
    report_by,
    spearman,
    to_category,
    to_scale,
)


def brute_pairwise_accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    """The definition, pair by pair: O(n^2), only for checking the fast version."""
    score = 0.0
    pairs = 0
    for i, j in itertools.combinations(range(len(labels)), 2):
        if labels[i] == labels[j]:
            continue
        hi, lo = (i, j) if labels[i] > labels[j] else (j, i)
        pairs += 1
        if preds[hi] > preds[lo]:
            score += 1.0
        elif preds[hi] == preds[lo]:
            score += 0.5
    return score / pairs if pairs else math.nan


def ties_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    # Half-point labels (means of two labelers) and predictions on a coarse grid: many ties
    # on both sides.
    labels = rng.integers(2, 11, size=n) / 2.0
    preds = rng.integers(0, 21, size=n) / 20.0
    return labels, preds


def test_to_scale_and_category() -> None:
    np.testing.assert_allclose(to_scale([0.0, 0.25, 1.0]), [1.0, 2.0, 5.0])
    # Halves round up (2.5 -> 3, 3.5 -> 4), unlike np.rint; out-of-range values clip.
    np.testing.assert_array_equal(to_category([2.5, 3.5, 2.49, 0.2, 5.7]), [3, 4, 2, 1, 5])


def test_mse_mae_on_label_scale() -> None:
    # preds [0.5, 0.25] -> scale [3, 2]; errors vs labels [1, 5] are [2, -3]
    # mse = (4 + 9) / 2 = 6.5, mae = (2 + 3) / 2 = 2.5
    assert mse([1, 5], [0.5, 0.25]) == pytest.approx(6.5)
    assert mae([1, 5], [0.5, 0.25]) == pytest.approx(2.5)
    # preds [0, 0.25, 1] -> [1, 2, 5]; errors vs [1, 3, 5] are [0, -1, 0] -> 1/3 for both
    assert mse([1, 3, 5], [0, 0.25, 1]) == pytest.approx(1 / 3)
    assert mae([1, 3, 5], [0, 0.25, 1]) == pytest.approx(1 / 3)
    assert math.isnan(mse([], []))
    with pytest.raises(ValueError, match="differ in length"):
        mse([1, 2], [0.5])


def test_pairwise_accuracy_by_hand() -> None:
    # pairs (1,2): 0 < 0.5 right; (1,3): 0 < 0.25 right; (2,3): 0.5 > 0.25 wrong -> 2/3
    assert pairwise_accuracy([1, 2, 3], [0, 0.5, 0.25]) == pytest.approx(2 / 3)
    # one pair, predictions tied -> 0.5
    assert pairwise_accuracy([1, 2], [0.3, 0.3]) == 0.5
    # perfectly reversed -> 0
    assert pairwise_accuracy([1, 2, 3], [0.9, 0.5, 0.1]) == 0.0


def test_pairwise_accuracy_non_integer_labels() -> None:
    # labels 1.5, 2.5, 2.5, 3.0 with preds 0.2, 0.1, 0.2, 0.9; the two 2.5s are not a pair.
    # (1.5,2.5a): 0.2 > 0.1 -> 0; (1.5,2.5b): tie -> 0.5; (1.5,3): 1; (2.5a,3): 1;
    # (2.5b,3): 1  => 3.5 / 5 = 0.7
    assert pairwise_accuracy([1.5, 2.5, 2.5, 3.0], [0.2, 0.1, 0.2, 0.9]) == pytest.approx(0.7)
    # 1.1 + 2.2 is 3.3000000000000003, not 3.3: the same mean label reached two ways must be
    # one label, not an ordered pair. Pairs left: (3.3a, 4): 0.9 > 0.5 -> 0; (3.3b, 4): 1
    # -> 1/2 (it would be 2/3 if the two 3.3s counted as a pair).
    assert 1.1 + 2.2 != 3.3
    assert pairwise_accuracy([1.1 + 2.2, 3.3, 4.0], [0.9, 0.1, 0.5]) == 0.5
    assert math.isnan(pairwise_accuracy([1.1 + 2.2, 3.3, 3.3 + 1e-12], [0.1, 0.9, 0.5]))


def test_pairwise_accuracy_no_pairs_is_nan() -> None:
    assert math.isnan(pairwise_accuracy([3, 3, 3], [0.1, 0.2, 0.3]))
    assert math.isnan(pairwise_accuracy([4], [0.1]))
    assert math.isnan(pairwise_accuracy([], []))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairwise_accuracy_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels, preds = ties_data(rng, 300)
    assert pairwise_accuracy(labels, preds) == pytest.approx(
        brute_pairwise_accuracy(labels, preds), abs=1e-12
    )


def test_pairwise_accuracy_large_n() -> None:
    # With many distinct labels too (means of three labelers) it stays fast at n = 60,000;
    # cross-check against Kendall's counts: accuracy = (C + T/2) / (C + D + T), where
    # C - D comes from tau-b and C + D + T is the number of differently-labelled pairs.
    rng = np.random.default_rng(7)
    n = 60_000
    labels = rng.integers(3, 16, size=n) / 3.0
    preds = np.round(rng.random(n) * 0.5 + (labels - 1) / 8, 3)
    result = pairwise_accuracy(labels, preds)

    def tied_pairs(values: np.ndarray) -> int:
        _, counts = np.unique(values, return_counts=True)
        return int(np.sum(counts * (counts - 1) // 2))

    y = np.round(labels, 9)
    n0 = n * (n - 1) // 2
    n1, n2 = tied_pairs(y), tied_pairs(preds)
    n3 = tied_pairs(y * 10_000 + preds)  # tied on both (preds < 1 on a 1e-3 grid)
    tau = stats.kendalltau(y, preds, variant="b").statistic
    c_minus_d = tau * math.sqrt((n0 - n1) * (n0 - n2))
    pred_ties = n2 - n3
    c_plus_d = (n0 - n1) - pred_ties
    concordant = (c_plus_d + c_minus_d) / 2
    expected = (concordant + pred_ties / 2) / (n0 - n1)
    assert result == pytest.approx(expected, abs=1e-9)


def test_qwk_by_hand() -> None:
    # labels 1..5; preds [0, .25, .5, .75, .75] -> categories [1, 2, 3, 4, 4].
    # Weights w_ij = (i - j)^2 / 16. Observed: one disagreement (5 vs 4) -> sum wO = 1/16.
    # Marginals: rows [1,1,1,1,1], cols [1,1,1,2,0]; E_ij = row_i * col_j / 5.
    # sum_i (i - j)^2 over i = 1..5 is 30, 15, 10, 15, 30 for j = 1..5, so
    # sum wE = (30 + 15 + 10 + 2 * 15 + 0) / (16 * 5) = 85 / 80 and
    # kappa = 1 - (5 / 80) / (85 / 80) = 1 - 5 / 85 = 16 / 17.
    kappa = quadratic_weighted_kappa([1, 2, 3, 4, 5], [0, 0.25, 0.5, 0.75, 0.75])
    assert kappa == pytest.approx(16 / 17)


def test_qwk_rounding_and_edges() -> None:
    # Perfect agreement after rounding: 2.5 -> 3 and 1 + 4 * 0.375 = 2.5 -> 3; 4.4 -> 4 and
    # 1 + 4 * 0.8 = 4.2 -> 4; 1 -> 1 and 1 + 4 * 0.05 = 1.2 -> 1.
    assert quadratic_weighted_kappa([2.5, 4.4, 1], [0.375, 0.8, 0.05]) == pytest.approx(1.0)
    # Labels 1, 5 predicted 5, 1: O is the anti-diagonal corners, sum wO = 2 * 16/16 = 2;
    # marginals [1,0,0,0,1] both sides, E = 1/2 in each corner, sum wE = 2 * 0.5 = 1
    # -> kappa = 1 - 2 / 1 = -1.
    assert quadratic_weighted_kappa([1, 5], [1.0, 0.0]) == pytest.approx(-1.0)
    # Everything in one category on both sides: no expected disagreement -> undefined.
    assert math.isnan(quadratic_weighted_kappa([3, 3, 3], [0.5, 0.5, 0.5]))
    assert math.isnan(quadratic_weighted_kappa([], []))


def test_spearman_and_kendall_match_scipy() -> None:
    rng = np.random.default_rng(3)
    labels, preds = ties_data(rng, 200)
    preds = preds * 0.5 + (labels - 1) / 8  # some real correlation
    assert spearman(labels, preds) == pytest.approx(stats.spearmanr(labels, preds).statistic)
    assert kendall_tau_b(labels, preds) == pytest.approx(
        stats.kendalltau(labels, preds, variant="b").statistic
    )
    # Average ranks for ties: labels [1, 2, 2, 3] rank [1, 2.5, 2.5, 4]; preds in the same
    # order -> rho = 1 exactly.
    assert spearman([1, 2, 2, 3], [0.1, 0.5, 0.5, 0.9]) == pytest.approx(1.0)


def test_correlations_nan_when_constant() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConstantInputWarning leaks out
        assert math.isnan(spearman([3, 3, 3], [0.1, 0.2, 0.3]))
        assert math.isnan(spearman([1, 2, 3], [0.5, 0.5, 0.5]))
        assert math.isnan(kendall_tau_b([3, 3, 3], [0.1, 0.2, 0.3]))
        assert math.isnan(kendall_tau_b([1], [0.1]))


def test_report_keys_and_types() -> None:
    out = report([1, 2, 3], [0, 0.5, 0.25])
    assert list(out) == [
        "n",
        "mse",
        "mae",
        "spearman",
        "kendall_tau_b",
        "pairwise_accuracy",
        "qwk",
    ]
    assert out["n"] == 3 and isinstance(out["n"], int)
    assert all(isinstance(out[key], float) for key in list(out)[1:])
    assert out["pairwise_accuracy"] == pytest.approx(2 / 3)
    # scale [1, 3, 2] vs labels [1, 2, 3]: errors [0, 1, -1] -> mse 2/3, mae 2/3
    assert out["mse"] == pytest.approx(2 / 3)
    assert out["mae"] == pytest.approx(2 / 3)


def test_report_by_drops_small_groups() -> None:
    rng = np.random.default_rng(5)
    labels, preds = ties_data(rng, 17)
    groups = np.array(["danbooru"] * 12 + ["e621"] * 5)
    out = report_by(labels, preds, groups, min_n=10)
    assert list(out) == ["danbooru"]
    assert out["danbooru"] == report(labels[:12], preds[:12])
    assert list(report_by(labels, preds, groups, min_n=5)) == ["danbooru", "e621"]
    with pytest.raises(ValueError, match="groups"):
        report_by(labels, preds, groups[:3])


def test_calibration_by_hand() -> None:
    # label 1: preds 0, 0.5 -> scale 1, 3 -> mean 2, std 1
    # label 2 (2.4 rounds down): pred 0.25 -> 2, std 0
    # label 5: pred 1 -> 5, std 0; labels 3 and 4 do not occur and are left out
    rows = calibration([1, 1, 2.4, 5], [0, 0.5, 0.25, 1])
    assert rows == [
        {"label": 1, "n": 2, "mean_prediction": 2.0, "std": 1.0},
        {"label": 2, "n": 1, "mean_prediction": 2.0, "std": 0.0},
        {"label": 5, "n": 1, "mean_prediction": 5.0, "std": 0.0},
    ]
    assert calibration([], []) == []
