import numpy as np
import pytest

from grokscope.analysis.curves import first_below, loss_spikes, phase_change, phase_changes


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


def reverse_s(n, at, width=20.0, high=2.3, low=1e-3, seed=0):
    """A plateau at ``high``, a sigmoid fall (in log space) centred on ``at``, a floor at ``low``; noisy."""
    t = np.arange(n)
    log_loss = np.log10(low) + (np.log10(high) - np.log10(low)) / (1 + np.exp((t - at) / width))
    return 10 ** (log_loss + np.random.default_rng(seed).normal(0, 0.05, n))


def test_phase_changes_are_located_in_several_curves():
    curves = {f"digit{i}": reverse_s(3000, at, seed=i) for i, at in enumerate([400, 900, 1500, 2200])}
    found = phase_changes(curves)
    for (name, at) in zip(curves, [400, 900, 1500, 2200]):
        assert abs(found[name] - at) <= 15, (name, found[name], at)


def test_no_phase_change_without_a_plateau_or_a_fall():
    t = np.arange(3000)
    assert phase_change(2.3 * np.exp(-t / 200.0) + 1e-4) is None  # falls from the first epoch on
    assert phase_change(np.full(3000, 2.3)) is None  # flat
    assert phase_change(reverse_s(3000, 1000, high=2.3, low=1.2)) is None  # too small a fall
    assert phase_change(reverse_s(100, 50)) is None  # too short to tell


def test_a_wobble_near_the_floor_is_not_a_phase_change():
    loss = reverse_s(3000, 300, low=1e-7)
    loss[2500:2540] *= 10  # a late bump at 1e-7: its fall back is steep but happens at the floor
    assert abs(phase_change(loss) - 300) <= 15
