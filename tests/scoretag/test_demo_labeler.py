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
