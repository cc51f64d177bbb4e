"""Events located in a training curve by fixed rules: loss spikes, and when a loss first drops below a level.

Curves are indexed by epoch (one value per epoch, NaN where not evaluated). Losses are compared
in decades (log10), floored at ``LOSS_FLOOR`` so that a float32 loss of exactly 0 stays finite.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LOSS_FLOOR = 1e-12


def loss_spikes(loss: np.ndarray, decades: float = 2.0, window: int = 100) -> list[int]:
    """Indices where a spike starts: ``log10(loss)`` at least ``decades`` above its minimum over
    the preceding ``window`` values, having not been so one value before.

    A slingshot (Thilak et al. 2022; Nanda et al. 2023 trace it to float32 ``log_softmax``) is
    such a jump: the train loss leaps by orders of magnitude within a few epochs and falls back.
    A slow drift of the same size over more than ``window`` epochs is not a spike.
    loss [epoch] -> list of epoch indices.
    """
    log_loss = pd.Series(np.log10(np.maximum(np.asarray(loss, dtype=float), LOSS_FLOOR)))
    trailing_min = log_loss.shift(1).rolling(window, min_periods=1).min()
    above = (log_loss - trailing_min >= decades).to_numpy()
    onset = above & ~np.concatenate([[False], above[:-1]])
    return np.flatnonzero(onset).tolist()


def first_below(epochs: np.ndarray, values: np.ndarray, level: float) -> int | None:
    """The first epoch whose (evaluated, non-NaN) value is below ``level``, or None."""
    below = np.flatnonzero(np.asarray(values, dtype=float) < level)  # NaN compares False
    return int(np.asarray(epochs)[below[0]]) if len(below) else None


PHASE_CHANGE_RULE = ("steepest fall of the smoothed log10 loss over +-w epochs, if it drops at least "
                     "min_drop decades there, starts in the upper half of the curve's log range, and the curve "
                     "was on a plateau before (mean slope over the preceding 2w at most a quarter of the steepest); "
                     "w is the smallest of window x 1, 2, 4, 8 at which such a fall exists")


def phase_change(loss: np.ndarray, window: int = 40, min_drop: float = 0.3) -> int | None:
    """The index of a loss curve's phase change, or None (rule: ``PHASE_CHANGE_RULE``).

    A phase change (seed 003) is a reverse S: a plateau, a sudden fall, a levelling off. Falls
    are sought at time scales ``window`` x 1, 2, 4, 8 (an answer digit falls within ~100 steps,
    an induction circuit forms over ~400), the smallest first.
    loss [epoch] -> epoch index.
    """
    log_loss = pd.Series(np.log10(np.maximum(np.asarray(loss, dtype=float), LOSS_FLOOR)))
    for scale in (1, 2, 4, 8):
        found = _phase_change_at(log_loss, window * scale, min_drop)
        if found is not None:
            return found
    return None


def _phase_change_at(log_loss: pd.Series, window: int, min_drop: float) -> int | None:
    """``phase_change`` at one time scale: the curve is smoothed by a centred rolling median of
    ``window`` values (minibatch noise), then its steepest fall over ``2 * window`` is tested; a
    curve falling from its first value on (no plateau), falling less than ``min_drop`` decades,
    or only wobbling in the lower half of its range (noise at a tiny loss) has none."""
    smooth = log_loss.rolling(window, center=True, min_periods=1).median().to_numpy()
    n = len(smooth)
    if n < 4 * window + 1:
        return None
    t = np.arange(window, n - window)
    drop = smooth[t - window] - smooth[t + window]  # decades fallen over [t - window, t + window]
    best = int(t[np.argmax(drop)])
    if drop.max() < min_drop or best < 3 * window:
        return None
    top, bottom = smooth.max(), smooth.min()
    if smooth[best - window] < (top + bottom) / 2:  # a wobble near the floor, not the curve's fall
        return None
    before = (smooth[best - 3 * window] - smooth[best - window]) / (2 * window)
    return best if before <= 0.25 * drop.max() / (2 * window) else None


def phase_changes(curves: dict[str, np.ndarray], window: int = 40, min_drop: float = 0.3) -> dict[str, int | None]:
    """``phase_change`` of each named curve (e.g. the loss of each answer digit)."""
    return {name: phase_change(curve, window, min_drop) for name, curve in curves.items()}
