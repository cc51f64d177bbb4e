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
