"""The local learning coefficient (LLC) over training, by SGLD (Lau et al., 2023).

At a checkpoint w*, SGLD chains sample a tempered posterior localised at w*:

    w <- w - (eps / 2) (n beta grad L_B(w) + gamma (w - w*)) + N(0, eps)

with L_B the training loss on a minibatch, n beta = n / log n, and the estimate is
``n beta (mean over draws of L_B(w) - L_n(w*))``, averaged over chains. The defaults (eps 1e-4,
gamma 1000, batch 512, 2 chains x 100 draws) were chosen on the canonical run (seed 0, AMD EPYC):
with the common eps 1e-5 / gamma 100 the chains do not equilibrate in a few hundred steps (the
two settings below disagreed: 17 vs 26 at the last checkpoint), and eps 3e-4 diverged. With
these, the last checkpoint gave 13.1 / 14.0 (two chains) against 12.3-13.0 (four, another seed),
and a memorised checkpoint (epoch 2,000) 96 / 95 against 91-95. grokscope has its own estimator rather than the ``devinterp`` library: devinterp 2.x
samples language models from a HuggingFace ``Dataset`` of ``input_ids`` with per-token losses
into Zarr, and pulls in ``transformers``, ``datasets``, ``xarray`` and ``zarr``; the estimator
itself is the loop below.

The estimate depends on these hyper-parameters, so they are recorded, and its stability is
checked at the last checkpoint against a second setting (twice the chains and draws, another
seed): stable when the two agree within ``TOLERANCE`` of their mean.
"""

from __future__ import annotations

import copy
import math

import pandas as pd
import torch

from grokscope.analysis.modular_records import LearningCoefficient, SGLDSettings
from grokscope.analysis.registry import AnalysisFamily, Computed, Prior, register
from grokscope.training.loop import training_forward
from grokscope.training.loss import cross_entropy

DEFAULT = SGLDSettings(chains=2, draws=100, burn_in=50, batch_size=512, lr=1e-4, localization=1000.0, seed=0)
CHECK = SGLDSettings(chains=4, draws=200, burn_in=50, batch_size=512, lr=1e-4, localization=1000.0, seed=1)
TOLERANCE = 0.25  # relative agreement of the two settings' final estimates
MAX_CHECKPOINTS = 20  # checkpoints estimated, evenly spread over the run (the last always)


def llc_per_chain(model, tokens: torch.Tensor, labels: torch.Tensor, query: torch.Tensor,
                  settings: SGLDSettings, loss_dtype: str = "float64", forward=None) -> list[float]:
    """The LLC of ``model``'s weights on (``tokens [n, pos]``, ``labels [n, target]``), one
    estimate per SGLD chain (NaN for a chain whose loss stopped being finite). ``forward(model)``
    gives the function computing the logits (default: the model itself)."""
    n = len(tokens)
    nbeta = n / math.log(n)
    forward = forward or (lambda m: m)
    with torch.no_grad():
        init_loss = float(cross_entropy(forward(model)(tokens, query), labels, loss_dtype))
    estimates = []
    for chain in range(settings.chains):
        sampler = copy.deepcopy(model)
        logits_of = forward(sampler)
        params = [p for p in sampler.parameters() if p.requires_grad]
        anchor = [p.detach().clone() for p in params]
        gen = torch.Generator().manual_seed(settings.seed * 1_000 + chain)
        total, finite = 0.0, True
        for step in range(settings.burn_in + settings.draws):
            index = torch.randint(n, (settings.batch_size,), generator=gen)
            loss = cross_entropy(logits_of(tokens[index], query), labels[index], loss_dtype)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g, w0 in zip(params, grads, anchor):
                    drift = nbeta * g + settings.localization * (p - w0)
                    p.add_(-0.5 * settings.lr * drift + math.sqrt(settings.lr) * torch.randn(p.shape, generator=gen))
            if step >= settings.burn_in:
                total += loss.item()
                finite = finite and math.isfinite(total)
        estimates.append(nbeta * (total / settings.draws - init_loss) if finite else math.nan)
    return estimates


def estimated_epochs(epochs: list[int], most: int = MAX_CHECKPOINTS) -> list[int]:
    """At most ``most`` checkpoints, evenly spread by index, the first and last included."""
    if len(epochs) <= most:
        return list(epochs)
    picks = {round(i * (len(epochs) - 1) / (most - 1)) for i in range(most)}
    return [epochs[i] for i in sorted(picks)]


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def spread(values: list[float]) -> float:
    """(max - min) / |mean| of the chains' estimates: large where the chains disagree, a sign that
    the sampler is not stable at that checkpoint (it does not enter the lead times)."""
    centre = abs(mean(values))
    return (max(values) - min(values)) / centre if centre > 0 else math.nan


@register
class LocalLearningCoefficient(AnalysisFamily):
    """The local learning coefficient over training, by SGLD (Lau et al., 2023).

    At up to 20 checkpoints (``progress.parquet`` columns ``llc`` and ``llc_chain_spread``), with a
    stability check; optional, since it costs more than the rest of the analysis
    (``grokscope analyze RUN --with llc``)."""

    name = "llc"
    record = LearningCoefficient
    optional = True  # ~1 min for the canonical run: ``grokscope analyze RUN --with llc``

    def applies_to(self, config) -> bool:
        return config.task.kind == "modular"

    def compute(self, run, prior: Prior | None, on_checkpoint=None) -> Computed:
        data, split = run.task.dataset(), run.task.split()
        tokens, labels = data.tokens[split.train], data.labels[split.train]
        query = torch.tensor(data.target_positions)
        loss_dtype = run.config.train.loss_dtype
        forward = lambda model: training_forward(model, run.config.train)  # noqa: E731 (the folded path where exact)
        epochs = estimated_epochs(run.checkpoint_epochs)
        rows = []
        for epoch in epochs:
            chains = llc_per_chain(run.model(epoch), tokens, labels, query, DEFAULT, loss_dtype, forward)
            rows.append({"epoch": epoch, "llc": mean(chains), "llc_chain_spread": spread(chains)})
        final_check = mean(llc_per_chain(run.model(epochs[-1]), tokens, labels, query, CHECK, loss_dtype, forward))
        final = rows[-1]["llc"]
        stable = math.isfinite(final) and math.isfinite(final_check) and \
            abs(final - final_check) <= TOLERANCE * abs(final + final_check) / 2
        result = LearningCoefficient(settings=DEFAULT, check_settings=CHECK, nbeta=len(tokens) / math.log(len(tokens)),
                                     epochs=epochs, final=final, final_check=final_check, final_per_chain=chains,
                                     tolerance=TOLERANCE, stable=stable)
        return Computed(result, progress=pd.DataFrame(rows))

    def findings(self, result: LearningCoefficient) -> list[str]:
        verdict = "stable" if result.stable else f"NOT stable (tolerance {result.tolerance:.0%})"
        return [f"local learning coefficient at the last checkpoint: {result.final:.1f} "
                f"({result.settings.chains} chains; {result.final_check:.1f} with {result.check_settings.chains} "
                f"chains x {result.check_settings.draws} draws: {verdict})"]

    def sections(self, run, analysis, progress):
        from grokscope.report.llc import sections

        return sections(analysis.extensions[self.name], progress, run.summary["grokking_epoch"])

    def summary_row(self, analysis) -> dict:
        result: LearningCoefficient = analysis.extensions[self.name]
        return {"llc_final": result.final, "llc_stable": result.stable}
