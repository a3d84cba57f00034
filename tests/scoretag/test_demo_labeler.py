import hashlib

import numpy as np
import pytest
from scipy.stats import spearmanr

from scoretag.demo.labeler import PANEL, SimulatedLabeler

MD5S = [hashlib.md5(str(i).encode()).hexdigest() for i in range(2000)]
QUALITY = np.resize(np.arange(1, 6), len(MD5S))


def test_rates_from_quality_plus_noise():
    labels = SimulatedLabeler().rate(MD5S, QUALITY)
    assert set(np.unique(labels)) <= {1, 2, 3, 4, 5}
    assert spearmanr(labels, QUALITY).statistic > 0.85
    assert 0.2 < (labels != QUALITY).mean() < 0.6  # noisy, as people are


def test_same_image_and_attempt_same_label_and_repeats_differ():
    rater = SimulatedLabeler(seed=3)
    first = rater.rate(MD5S, QUALITY)
    assert (rater.rate(MD5S, QUALITY) == first).all()
    repeat = rater.rate(MD5S, QUALITY, attempt=1)
    assert 0.5 < (repeat == first).mean() < 1.0


def test_bias_moves_the_mean():
    harsh = SimulatedLabeler("simulated-harsh", bias=-0.5).rate(MD5S, QUALITY).mean()
    lenient = SimulatedLabeler("simulated-lenient", bias=0.5).rate(MD5S, QUALITY).mean()
    assert harsh < QUALITY.mean() < lenient


def test_panel_members_disagree_a_little_and_are_named_simulated():
    labels = [r.rate(MD5S, QUALITY) for r in PANEL]
    assert all(r.name.startswith("simulated") for r in PANEL)
    agreement = (labels[0] == labels[1]).mean()
    assert 0.3 < agreement < 0.95


def test_a_simulated_labeler_must_say_so():
    with pytest.raises(ValueError, match="must start with 'simulated'"):
        SimulatedLabeler("alice")


PAIRS = list(zip(MD5S[::2], MD5S[1::2], strict=True))


def _compare(rater: SimulatedLabeler, qualities, attempt: int = 0) -> np.ndarray:
    both = zip(PAIRS, qualities, strict=True)
    return np.array([rater.compare(a, b, qa, qb, attempt) for (a, b), (qa, qb) in both])


def _left_share(choices: np.ndarray) -> float:
    decisive = choices[choices != "tie"]
    return float((decisive == "left").mean())


def test_compares_from_quality_plus_noise_seeded_like_rate():
    rater = SimulatedLabeler(seed=3)
    apart = [(1 + i % 4, 2 + i % 4) for i in range(len(PAIRS))]  # right one step better
    first = _compare(rater, apart)
    assert set(first) <= {"left", "right", "tie"}
    assert (first == "right").mean() > 0.7 and (first == "left").mean() < 0.15
    assert (_compare(rater, apart) == first).all()  # the same pair and attempt: same answer
    repeat = _compare(rater, apart, attempt=1)  # a hidden repeat draws fresh noise
    assert 0.5 < (repeat == first).mean() < 1.0
    other = _compare(SimulatedLabeler("simulated-other", seed=3), apart)
    assert not (other == first).all()


def test_bias_cancels_in_a_comparison():
    apart = [(2 + i % 3, 3 + i % 3) for i in range(len(PAIRS))]
    fair = _compare(SimulatedLabeler("simulated-a"), apart)
    harsh = _compare(SimulatedLabeler("simulated-a", bias=-1.0), apart)
    lenient = _compare(SimulatedLabeler("simulated-a", bias=1.5), apart)
    assert (harsh == fair).all() and (lenient == fair).all()


def test_ties_when_the_images_look_alike():
    rater = SimulatedLabeler(noise=0.3)
    same = _compare(rater, [(3, 3)] * len(PAIRS))
    far = _compare(rater, [(1, 5)] * len(PAIRS))
    assert 0.3 < (same == "tie").mean() < 0.7  # perceptions within 0.25 steps: a tie
    assert (far == "right").all()
    assert 0.4 < _left_share(same) < 0.6  # no position bias: either side alike
    # without noise, equal quality is always a tie, and a full step never is
    exact = SimulatedLabeler(noise=0.0)
    assert exact.compare(*PAIRS[0], 3, 3) == "tie"
    assert exact.compare(*PAIRS[0], 4, 3) == "left"


def test_position_bias_leans_left_on_close_pairs():
    close = [(3, 3)] * len(PAIRS)
    leaning = SimulatedLabeler("simulated-lenient", noise=0.7, position_bias=0.3)
    assert _left_share(_compare(leaning, close)) > 0.57
    lenient = next(r for r in PANEL if r.name == "simulated-lenient")
    assert lenient.position_bias > 0
    assert all(r.position_bias == 0 for r in PANEL if r is not lenient)
    assert 0.5 < _left_share(_compare(lenient, close)) < 0.75  # a little, not always


def test_an_unusable_image_is_skipped():
    rater = SimulatedLabeler()
    assert rater.compare(*PAIRS[0], None, 3) == "skip"
    assert rater.compare(*PAIRS[0], 4, None) == "skip"
    assert rater.compare(*PAIRS[0], None, None) == "skip"
