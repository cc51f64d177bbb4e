import numpy as np
import pytest

from grokscope.analysis.curves import first_below, loss_spikes


def smooth_curve(n=3000):
    """A train loss falling from ~4.7 to ~1e-7 with small multiplicative noise, no spikes."""
    rng = np.random.default_rng(0)
    return 4.7 * np.exp(-np.arange(n) / 150.0) + 1e-7 * np.exp(rng.normal(0, 0.3, n))


def test_a_smooth_fall_has_no_spikes():
    assert loss_spikes(smooth_curve()) == []


@pytest.mark.parametrize("onsets", [[1200], [1500, 2000, 2600]])
def test_planted_slingshots_are_found_at_their_onsets(onsets):
    loss = smooth_curve()
    for start in onsets:
        loss[start:start + 40] *= 10 ** np.linspace(4, 0, 40)  # leap four decades, fall back over 40 epochs
    assert loss_spikes(loss) == onsets


def test_a_slow_drift_and_exact_zeros_are_not_spikes():
    drift = 10 ** np.linspace(-7, -4, 5000)  # three decades up, but over 5000 epochs
    assert loss_spikes(drift) == []
    zeros = np.where(np.arange(500) % 7 == 0, 0.0, 1e-13)  # a float32 loss at its floor
    assert loss_spikes(zeros) == []


def test_a_spike_from_an_exact_zero_loss_counts():
    loss = np.zeros(300)
    loss[200:210] = 0.5
    assert loss_spikes(loss) == [200]


def test_first_below_skips_unevaluated_epochs():
    epochs = np.arange(6)
    values = np.array([2.0, np.nan, 0.5, np.nan, 0.05, 0.01])
    assert first_below(epochs, values, 0.1) == 4
    assert first_below(epochs, values, 0.001) is None
