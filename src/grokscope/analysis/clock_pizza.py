"""Clock or pizza (Zhong et al., 2023): which of two modular-addition algorithms a model runs.

The *clock* (Nanda et al.'s Fourier multiplication) multiplies the inputs' waves, so its
correct-class logit does not depend on the distance between the inputs. The *pizza* adds the
two embeddings first; for each key frequency its correct logit is proportional to
``|cos(w_k (x - y) / 2)|``, and the logit's gradient is the same for both inputs. The paper's
two measures, as in its released code (fjzzq2002/pizza, ``eval-main.ipynb``):

- **distance irrelevance**: the correct-class logit arranged as ``L[s, d]`` with answer
  ``s = x + y`` and distance ``d = x - y`` (mod p; for subtraction ``s = x - y``, ``d = x + y``);
  the mean over d of the standard deviation over s, divided by the standard deviation of all of
  L. Near 1: the logit ignores the distance (clock); lower: it follows it (pizza).
- **gradient symmetricity**: for sampled (x, y, c), the cosine similarity between the gradients
  of logit c with respect to the token embeddings of x and of y, averaged. The paper samples
  100 triples; here ``SAMPLES`` (fixed seed) for a steadier mean.

The paper's released runs (p = 59, 80 % of pairs, weight decay 2) give medians of about
0.99 / 0.65 (symmetricity / irrelevance) for pizza models (attention rate < 0.1) and
0.50 / 0.86 for clock models (attention rate >= 0.9); ``RULE``'s thresholds sit halfway.
Both measures are computed at every checkpoint (``progress.parquet``) and at the end.
"""

from __future__ import annotations

import math
from functools import partial

import pandas as pd
import torch

from grokscope.analysis.modular_records import ClockPizza
from grokscope.analysis.registry import AnalysisFamily, Computed, Prior, register
from grokscope.models.folded import folded_logits, supports_folded
from grokscope.runs import Run

SAMPLES = 1000  # (x, y, c) triples for the gradient symmetricity
THRESHOLD = 0.75  # on both measures: halfway between the paper's pizza and clock medians
RULE = ("pizza: gradient symmetricity >= 0.75 and distance irrelevance < 0.75; clock: symmetricity < 0.75 "
        "and irrelevance >= 0.75; otherwise unclear (halfway between Zhong et al.'s medians, 0.99 / 0.65 pizza, "
        "0.50 / 0.86 clock)")
SIGNS = {"add": 1, "sub": -1}


def correct_logit_grid(logits: torch.Tensor, sign: int) -> torch.Tensor:
    """``L[s, d]``: the correct class's logit at answer ``s = x + sign*y`` and distance ``d = x - sign*y``
    (mod p), from ``logits [x, y, class]``: [p, p]."""
    p = logits.shape[0]
    x, y = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    s, d = (x + sign * y) % p, (x - sign * y) % p
    L = torch.empty(p, p, dtype=logits.dtype)
    L[s, d] = logits[x, y, s]  # (s, d) -> (x, y) is a bijection for odd p
    return L


def distance_irrelevance(L: torch.Tensor) -> float:
    """Mean over distances d of the spread of ``L[:, d]`` over answers, over the spread of all of L
    (population standard deviations, as in the paper's code). NaN if L is constant."""
    total = L.std(correction=0)
    return float(L.std(dim=0, correction=0).mean() / total) if total > 0 else math.nan


def gradient_symmetricity(logit_fn, E: torch.Tensor, x: torch.Tensor, y: torch.Tensor, c: torch.Tensor) -> float:
    """Mean over triples of cos(d logit_c / d e_x, d logit_c / d e_y), where ``logit_fn(e_x, e_y)``
    gives the logits [batch, class] from the two inputs' embeddings [batch, d] (rows of ``E``)."""
    e_x = E[x].detach().clone().requires_grad_(True)
    e_y = E[y].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = logit_fn(e_x, e_y)  # [batch, class]
        g_x, g_y = torch.autograd.grad(logits.gather(1, c[:, None]).sum(), (e_x, e_y))
    return float(torch.nn.functional.cosine_similarity(g_x, g_y, dim=1, eps=1e-30).mean())


def model_logit_fn(model, p: int):
    """``logit_fn`` for a 1-position-per-input modular transformer: tokens (x, y, '='), the
    embeddings of x and y replaced by the given ones (the '=' row and positions as trained)."""
    def logit_fn(e_x: torch.Tensor, e_y: torch.Tensor) -> torch.Tensor:
        batch = len(e_x)
        tokens = torch.stack([torch.zeros(batch, dtype=torch.long)] * 2 + [torch.full((batch,), p)], dim=1)

        def replace(embedded: torch.Tensor, hook) -> torch.Tensor:  # [batch, pos, d_model]
            return torch.cat([e_x[:, None], e_y[:, None], embedded[:, 2:]], dim=1)

        return model.run_with_hooks(tokens, torch.tensor([2]), fwd_hooks=[("hook_embed", replace)])[:, 0]
    return logit_fn


def sampled_triples(p: int, n: int = SAMPLES) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` (x, y, c) triples drawn uniformly with a fixed seed: three [n] tensors."""
    g = torch.Generator().manual_seed(42)
    x, y, c = torch.randint(0, p, (3, n), generator=g)
    return x, y, c


def classify(symmetricity: float, irrelevance: float) -> str:
    """"clock", "pizza" or "unclear", by ``RULE``."""
    if symmetricity >= THRESHOLD and irrelevance < THRESHOLD:
        return "pizza"
    if symmetricity < THRESHOLD and irrelevance >= THRESHOLD:
        return "clock"
    return "unclear"


def pizza_correlation(L: torch.Tensor, k: int) -> float:
    """Pearson correlation over distances d of ``mean_s L[s, d]`` with ``|cos(w_k d / 2)|``."""
    p = L.shape[0]
    profile = L.mean(0)  # [p]: mean correct logit at each distance
    wave = torch.cos(math.pi * k * torch.arange(p, dtype=L.dtype) / p).abs()
    a, b = profile - profile.mean(), wave - wave.mean()
    denominator = a.norm() * b.norm()
    return float(a @ b / denominator) if denominator > 0 else math.nan


@torch.no_grad()
def grid_logits(model, p: int) -> torch.Tensor:
    """The model's logits at '=' for every (x, y), by the exact folded path where it applies
    (models/folded.py; ~20x fewer operations than the full forward): [x, y, class]."""
    x, y = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    tokens = torch.stack([x.flatten(), y.flatten(), torch.full((p * p,), p)], dim=1)
    forward = partial(folded_logits, model) if supports_folded(model) else model
    return forward(tokens, torch.tensor([2]))[:, 0].double().reshape(p, p, -1)


def measures(model, p: int, sign: int) -> tuple[float, float, torch.Tensor]:
    """(gradient symmetricity, distance irrelevance, L [p, p]) of one model."""
    L = correct_logit_grid(grid_logits(model, p), sign)
    x, y, c = sampled_triples(p)
    symmetricity = gradient_symmetricity(model_logit_fn(model, p), model.W_E.detach(), x, y, c)
    return symmetricity, distance_irrelevance(L), L


@register
class ClockOrPizza(AnalysisFamily):
    """Zhong et al.'s gradient symmetricity and distance irrelevance, over training and at the
    end, and the class they give: clock, pizza or unclear."""

    name = "clock_pizza"
    record = ClockPizza

    def applies_to(self, config) -> bool:
        return (config.task.kind == "modular" and config.task.op in SIGNS and config.model.kind == "transformer"
                and config.model.n_layers == 1)

    def compute(self, run: Run, prior: Prior | None, on_checkpoint=None) -> Computed:
        p, sign = run.config.task.p, SIGNS[run.config.task.op]
        rows = []
        for epoch in run.checkpoint_epochs:
            symmetricity, irrelevance, L = measures(run.model(epoch), p, sign)
            rows.append({"epoch": epoch, "gradient_symmetricity": symmetricity, "distance_irrelevance": irrelevance})
        result = ClockPizza(
            gradient_symmetricity=symmetricity, distance_irrelevance=irrelevance,
            kind=classify(symmetricity, irrelevance), rule=RULE, samples=SAMPLES,
            pizza_correlation={k: pizza_correlation(L, k) for k in prior.primary.key_frequencies},
        )
        return Computed(result, progress=pd.DataFrame(rows), arrays={"correct_logit": L.float()})

    def findings(self, result: ClockPizza) -> list[str]:
        return [f"clock or pizza: {result.kind} (gradient symmetricity {result.gradient_symmetricity:.2f}, "
                f"distance irrelevance {result.distance_irrelevance:.2f}; Zhong et al.'s medians: clock 0.50 / 0.86, "
                f"pizza 0.99 / 0.65)"]

    def sections(self, run, analysis, progress):
        from grokscope.report.clock_pizza import sections

        return sections(run, analysis.extensions[self.name], progress)

    def sweep_sections(self, table, axes):
        if "gradient_symmetricity" not in table.columns or table["gradient_symmetricity"].isna().all():
            return []
        from grokscope.report.clock_pizza import sweep_scatter

        return [("Clock or pizza, member by member",
                 "Each member's gradient symmetricity and distance irrelevance at its last checkpoint; dashed: the "
                 "rule's thresholds (pizza bottom right, clock top left); crosses: Zhong et al.'s medians.",
                 lambda: sweep_scatter(table, axes))]

    def summary_row(self, analysis) -> dict:
        result: ClockPizza = analysis.extensions[self.name]
        return {"clock_pizza": result.kind, "gradient_symmetricity": result.gradient_symmetricity,
                "distance_irrelevance": result.distance_irrelevance}
