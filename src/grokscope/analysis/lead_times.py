"""Which progress measure moves first: each measure's crossing epoch and its lead over grokking.

For each measure in the progress table, its move is measured from its value at the end of
memorisation (the modular family's first phase; the first checkpoint if memorisation never
ended) to its value at the last checkpoint. The measure *crosses* at the first checkpoint, at
or after that start, where it has covered half of that move; losses are compared in log10,
since they change by orders of magnitude. Its *lead* is the grokking epoch minus the crossing
epoch: positive when the measure moved before test accuracy did. A measure that moved by
less than ``MIN_MOVE`` of its own scale has no crossing.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from grokscope.analysis.modular_records import LeadTimes
from grokscope.analysis.registry import AnalysisFamily, Computed, Prior, register

SHARE = 0.5  # of the move from the start of the measure's window to its final value
MIN_MOVE = 1e-3  # a move smaller than this (relative to the measure's largest magnitude) is none
LOG_MEASURES = ("excluded_loss_train", "restricted_loss_train", "restricted_loss_test", "restricted_neuron_loss_test")
MEASURES = (*LOG_MEASURES, "embed_fourier_gini", "ssw_total", "softmax_collapse_train", "gradient_symmetricity",
            "distance_irrelevance", "llc")
RULE = ("crossing: the first checkpoint, from the end of memorisation on, where a measure has covered half of its "
        "move from its value there to its final value (losses in log10); lead = grokking epoch - crossing")


def crossing_epoch(epochs: np.ndarray, values: np.ndarray, start: int, log: bool = False) -> int | None:
    """The first epoch >= ``start`` where ``values`` have covered ``SHARE`` of their move from
    the value at ``start`` to the last one (None if they did not move)."""
    keep = (epochs >= start) & np.isfinite(values)
    epochs, values = epochs[keep], values[keep]
    if len(values) < 2:
        return None
    if log:
        values = np.log10(np.clip(values, 1e-300, None))
    first, last = values[0], values[-1]
    scale = max(np.abs(values).max(), 1e-300)
    if abs(last - first) < MIN_MOVE * scale:
        return None
    covered = (values - first) / (last - first)  # 0 at the start, 1 at the end
    reached = np.nonzero(covered >= SHARE)[0]
    return int(epochs[reached[0]]) if len(reached) else None


def lead_times(progress: pd.DataFrame, start: int | None, grok: int | None) -> LeadTimes:
    """Crossing and lead of every measure present in ``progress``."""
    epochs = progress["epoch"].to_numpy()
    begin = start if start is not None else int(epochs[0])
    crossing = {m: crossing_epoch(epochs, progress[m].to_numpy(dtype=float), begin, m in LOG_MEASURES)
                for m in MEASURES if m in progress.columns}
    lead = {m: (grok - e if grok is not None and e is not None else None) for m, e in crossing.items()}
    return LeadTimes(rule=RULE, start_epoch=start, grokking_epoch=grok, crossing=crossing, lead=lead)


@register
class ProgressLeadTimes(AnalysisFamily):
    """When each progress measure crossed half of its move, against the grokking epoch."""

    name = "lead_times"
    record = LeadTimes
    after = ("clock_pizza", "llc")  # their measures are in the progress table by then

    def applies_to(self, config) -> bool:
        return config.task.kind == "modular"

    def compute(self, run, prior: Prior | None, on_checkpoint=None) -> Computed:
        a = prior.primary
        return Computed(lead_times(prior.progress, a.phases.memorisation_end, a.grokking_epoch))

    def findings(self, result: LeadTimes) -> list[str]:
        moved = {m: v for m, v in result.lead.items() if v is not None}
        if not moved:
            return []
        first = max(moved, key=moved.get)
        return [f"lead times: {first} crossed half its move first, {moved[first]:,} epochs before grokking "
                f"(every measure: analysis.json lead_times)"]

    def sections(self, run, analysis, progress):
        from grokscope.report.lead_times import sections

        return sections(analysis.extensions[self.name])

    def sweep_sections(self, table, axes):
        if not any(c.startswith("lead_") and table[c].notna().any() for c in table.columns):
            return []
        from grokscope.report.lead_times import sweep_leads

        return [("Which measure moved first, over the members",
                 f"Each measure's lead over grokking, one point per member. Rule: {RULE}.",
                 lambda: sweep_leads(table))]

    def summary_row(self, analysis) -> dict:
        result: LeadTimes = analysis.extensions[self.name]
        return {f"lead_{m}": (math.nan if v is None else v) for m, v in result.lead.items()}
