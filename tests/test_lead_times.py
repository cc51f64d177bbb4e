"""Lead times of the progress measures: planted curves with known crossings, and a real run."""

import numpy as np
import pandas as pd

from grokscope.analysis.lead_times import crossing_epoch, lead_times


def test_planted_curves_cross_where_they_have_covered_half_their_move():
    epochs = np.arange(0, 3001, 100)
    rising = np.where(epochs < 1000, 0.0, np.minimum((epochs - 1000) / 1000, 1.0))  # 0 -> 1 between 1000 and 2000
    assert crossing_epoch(epochs, rising, start=500) == 1500
    loss = 10.0 ** np.where(epochs < 1000, 0.0, -np.minimum((epochs - 1000) / 100, 6))  # 1 -> 1e-6 from 1000 to 1600
    assert crossing_epoch(epochs, loss, start=500, log=True) == 1300  # half of six decades
    assert crossing_epoch(epochs, loss, start=500) == 1100  # on a linear scale it is nearly all gone at once
    assert crossing_epoch(epochs, np.full(len(epochs), 3.0), start=0) is None  # it never moved
    assert crossing_epoch(epochs, rising, start=2500) is None  # nothing left to move after the start


def test_leads_are_counted_from_the_grokking_epoch():
    epochs = np.arange(0, 3001, 100)
    progress = pd.DataFrame({"epoch": epochs,
                             "embed_fourier_gini": np.clip((epochs - 1000) / 1000, 0, 1),
                             "ssw_total": np.full(len(epochs), 7.0)})
    result = lead_times(progress, start=800, grok=1900)
    assert result.crossing == {"embed_fourier_gini": 1500, "ssw_total": None}
    assert result.lead == {"embed_fourier_gini": 400, "ssw_total": None}
    assert lead_times(progress, start=None, grok=None).lead == {"embed_fourier_gini": None, "ssw_total": None}


def test_a_real_run_records_a_lead_for_every_measure(grokked):
    run, analysis = grokked
    result = analysis["lead_times"]
    assert result["grokking_epoch"] == analysis["grokking_epoch"] is not None
    for measure in ("excluded_loss_train", "restricted_loss_test", "embed_fourier_gini", "ssw_total",
                    "softmax_collapse_train", "gradient_symmetricity", "distance_irrelevance"):
        assert measure in result["lead"], measure
    # the key directions' test loss falls before test accuracy passes 99 % (Nanda et al.'s progress measure)
    assert result["lead"]["restricted_loss_test"] is not None and result["lead"]["restricted_loss_test"] > 0
