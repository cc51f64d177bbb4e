"""The grid's Fourier terms by least squares over the values a pow_sum task adds (value_grid.py):
equal to the orthonormal 2-D Fourier basis where u = x and v = y, and finding planted waves of
a non-bijective power's values where that basis cannot."""

import math

import pandas as pd
import pytest
import torch

from grokscope.analysis.ablation import run_ablations
from grokscope.analysis.fourier import FourierBasis
from grokscope.analysis.frequencies import frequency_variance_shares, logit_frequency_fit
from grokscope.analysis.grid_terms import FourierTerms
from grokscope.analysis.progress import excluded_logits, grid_loss, restricted_logits, xy_waves
from grokscope.analysis.value_grid import ValueGrid, orthonormal_span
from grokscope.tasks.modular import power_values

P = 29


def identity_grid(p: int = P) -> ValueGrid:
    return ValueGrid(p=p, u=torch.arange(p), v=torch.arange(p))


def test_with_u_x_and_v_y_it_is_the_2d_fourier_basis():
    """Both GridTerms give the same numbers where u = x and v = y: shares and clusters,
    restriction, single-frequency approximation and removal of a frequency, on a random grid."""
    torch.manual_seed(0)
    basis, grid, fourier = FourierBasis(P), identity_grid(), FourierTerms(FourierBasis(P))
    neurons = torch.randn(P, P, 7, dtype=torch.float64)
    assert torch.allclose(grid.shares(neurons), frequency_variance_shares(basis, neurons), atol=1e-10)
    a, b = grid.neuron_clusters(neurons, 0.85), fourier.neuron_clusters(neurons, 0.85)
    assert torch.equal(a.frequency, b.frequency) and torch.allclose(a.fve, b.fve, atol=1e-10)
    assert torch.allclose(grid.restrict(neurons, [3, 11]), fourier.restrict(neurons, [3, 11]), atol=1e-10)
    freq = torch.tensor([1, 3, 3, 14, 5, 1, 2])
    assert torch.allclose(grid.single_frequency(neurons, freq), fourier.single_frequency(neurons, freq), atol=1e-10)
    assert torch.allclose(grid.without(neurons, 4), fourier.without(neurons, 4), atol=1e-10)
    assert fourier.phase() is None


def test_removing_a_frequency_leaves_none_of_it_and_all_the_rest():
    """FourierTerms.without on a planted sum of frequencies 4 and 9 plus a constant: frequency 4's
    terms go, the constant and frequency 9 stay, for a grid of any trailing shape."""
    fourier, r = FourierTerms(FourierBasis(P)), torch.arange(P).double()
    w = lambda k: 2 * math.pi * k / P  # noqa: E731
    nine = torch.cos(w(9) * r)[:, None] * torch.sin(w(9) * r)[None, :]
    planted = 3.0 + torch.cos(w(4) * r)[:, None] + torch.sin(w(4) * (r[:, None] + r[None, :])) + nine  # [x, y]
    assert torch.allclose(fourier.without(planted, 4), 3.0 + nine, atol=1e-10)
    stacked = torch.stack([planted, 2 * planted], -1)[..., None]  # [x, y, 2, 1]
    assert torch.allclose(fourier.without(stacked, 4)[..., 1, 0], 2 * (3.0 + nine), atol=1e-10)


@pytest.mark.parametrize("sign", [1, -1])
def test_a_phase_of_x_plus_sy_gives_the_same_logit_measures(sign):
    torch.manual_seed(1)
    logits = torch.randn(P, P, P, dtype=torch.float64)
    r = torch.arange(P)
    phase = (r[:, None] + sign * r[None, :]).double()
    plain, general = xy_waves(P, [2, 9], sign), xy_waves(P, [2, 9], phase=phase)
    as_span = lambda w: w.reshape(len(w), -1).T @ w.reshape(len(w), -1)  # noqa: E731  projector [cell, cell]
    assert torch.allclose(as_span(plain), as_span(general), atol=1e-10)
    assert torch.allclose(excluded_logits(logits, [2, 9], sign), excluded_logits(logits, [2, 9], phase=phase), atol=1e-10)
    assert torch.allclose(restricted_logits(logits, [2, 9], sign), restricted_logits(logits, [2, 9], phase=phase), atol=1e-10)
    a, b = logit_frequency_fit(logits, sign), logit_frequency_fit(logits, phase=phase)
    assert torch.allclose(a.share, b.share, atol=1e-12) and torch.allclose(a.alpha, b.alpha, atol=1e-12)


def planted_y4_grid() -> ValueGrid:
    """(x^3 + y^4) mod 29: x^3 is a bijection (gcd(3, 28) = 1); y^4 takes 8 values."""
    grid = ValueGrid(p=P, u=power_values(P, 3), v=power_values(P, 4))
    assert grid.u.unique().numel() == P and grid.v.unique().numel() == 8
    return grid


def test_planted_neurons_of_waves_over_the_values_cluster_at_their_frequency():
    """Neurons cos(w_k (u + v)) and a product cos(w_k u) sin(w_k v) of a non-bijective v: each
    frequency's least-squares terms explain all their variance; over raw (x, y) the Fourier
    basis spreads them."""
    grid = planted_y4_grid()
    w = lambda k: 2 * math.pi * k / P  # noqa: E731
    u, v = grid.u.double()[:, None], grid.v.double()[None, :]
    neurons = torch.stack([torch.cos(w(5) * (u + v)), torch.cos(w(11) * u) * torch.sin(w(11) * v),
                           torch.cos(w(2) * u) + 0.3 * torch.cos(w(2) * v) + 0.0 * v], -1)  # [x, y, 3]
    clusters = grid.neuron_clusters(neurons, 0.85)
    assert clusters.frequency.tolist() == [5, 11, 2] and torch.all(clusters.fve > 0.999)
    raw = frequency_variance_shares(FourierBasis(P), neurons).max(0).values
    assert torch.all(raw[:2] < 0.5)  # in x, y the first two are no single frequency's terms
    assert torch.allclose(grid.restrict(neurons, [5, 11, 2]), neurons, atol=1e-10)
    assert grid.without(neurons[..., :1], 5).std() < 1e-10  # nothing left but the mean


def test_planted_logits_over_the_values_are_found_by_the_logit_fit_and_losses():
    """Logits 4 cos(w_k (x^3 + y^4 - z)) for k in {3, 7}: the fit over the task's phase names
    exactly those, explaining all the variance; restricted to them the loss is the planted
    logits' own; with them excluded, the labels are lost."""
    grid = planted_y4_grid()
    z = torch.arange(P).double()
    logits = sum(4.0 * torch.cos(2 * math.pi * k / P * (grid.phase()[..., None] - z)) for k in (3, 7))  # [x, y, z]
    labels = (grid.u[:, None] + grid.v[None, :]) % P
    fit = logit_frequency_fit(logits, phase=grid.phase())
    assert sorted((fit.share > 0.01).nonzero()[:, 0].add(1).tolist()) == [3, 7]
    assert fit.fve([3, 7]) == pytest.approx(1.0) and torch.allclose(fit.approximation([3, 7]), logits - logits.mean(-1, keepdim=True))
    assert logit_frequency_fit(logits).fve([3, 7]) < 0.2  # over x + y they are not waves
    base = grid_loss(logits, labels)
    assert grid_loss(restricted_logits(logits, [3, 7], phase=grid.phase()), labels) == pytest.approx(base, abs=1e-9)
    assert grid_loss(excluded_logits(logits, [3, 7], phase=grid.phase()), labels) == pytest.approx(math.log(P), abs=1e-6)


def test_both_powers_not_bijective_still_gives_orthonormal_centred_directions():
    """(x^7 + y^7) mod 29 (gcd(7, 28) = 7: 5 values each): the waves cos(w(u + v)) are not
    orthogonal over the grid, and u + v takes at most 25 values, so the 28 waves of k = 1..14
    span at most 24 centred directions; xy_waves orthonormalises that span."""
    grid = ValueGrid(p=P, u=power_values(P, 7), v=power_values(P, 7))
    n_sums = ((grid.u[:, None] + grid.v[None, :]) % P).unique().numel()
    assert n_sums <= 25
    waves = xy_waves(P, list(range(1, 15)), phase=grid.phase()).reshape(-1, P * P)  # [n, cell]
    assert torch.allclose(waves @ waves.T, torch.eye(len(waves), dtype=torch.float64), atol=1e-10)
    assert waves.sum(1).abs().max() < 1e-9 and len(waves) == n_sums - 1  # centred; aliases dropped


def test_orthonormal_span_drops_repeated_columns():
    torch.manual_seed(2)
    a = torch.randn(50, 3, dtype=torch.float64)
    Q = orthonormal_span(torch.cat([a, a[:, :1] * 2, a[:, 1:2] - a[:, 2:3]], 1))
    assert Q.shape == (50, 3) and torch.allclose(Q.T @ Q, torch.eye(3, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(Q @ (Q.T @ a), a, atol=1e-10)


def test_ablations_over_the_values_use_the_value_terms():
    """run_ablations with a ValueGrid removes a frequency's value terms: a planted neuron that is
    all frequency 5 over (x^3, y^4) is flattened, so its logit contribution is lost."""
    grid = planted_y4_grid()
    w = 2 * math.pi * 5 / P
    neurons = torch.cos(w * grid.phase())[..., None]  # [x, y, 1]
    z = torch.arange(P).double()
    W_L_ = torch.ones(1, P, dtype=torch.float64)
    logits = 6.0 * torch.cos(w * (grid.phase()[..., None] - z))  # [x, y, z], not via the neuron: only the edit moves
    labels = (grid.u[:, None] + grid.v[None, :]) % P
    result = run_ablations(grid, logits, labels, neurons, W_L_, torch.tensor([5]), torch.tensor([True]), [5])
    edited = grid.without(neurons, 5)
    assert result.frequency_directions[5] == pytest.approx(grid_loss(logits + (edited - neurons) @ W_L_, labels))
    assert result.single_frequency_approximation == pytest.approx(result.base_loss)


def test_a_real_x3_plus_y4_run_implements_the_algorithm_on_the_values(tmp_path):
    """(x^3 + y^4) mod 29 (y^4: 8 values), 80 % of pairs: it groks (epoch ~1,570 on seed 0), and
    the analysis over the values finds the same key frequencies in W_E and the logits (the
    neurons' clusters among them) and a positive verdict; the same logits over x + y are not waves of those frequencies.
    The logits' mean over y took up its waves long before grokking, led by the coset of the fourth
    powers' values with the largest wave mean, which holds the keys; the report draws it."""
    from grokscope import load_preset, load_run, train_run
    from grokscope.analysis.activations import grid_activations
    from grokscope.analysis.registry import analyze_run

    overrides = ["task.op=pow_sum", "task.p=29", "task.a=3", "task.b=4", "task.frac_train=0.8",
                 "train.epochs=3000", "train.stop_after_grok=1000"]
    train_run(load_preset("quick", overrides), tmp_path / "r")
    run = load_run(tmp_path / "r")
    document = analyze_run(run)
    by_method = document["key_frequencies_by_method"]
    assert document["grokking_epoch"] is not None and document["verdict"]["implements_fourier_multiplication"]
    assert by_method["embedding"] == by_method["logits"] == document["key_frequencies"]
    assert by_method["neurons"] and set(by_method["neurons"]) <= set(document["key_frequencies"])
    assert any("cos(w(x^3+y^4-z))" in line for line in document["findings"])
    assert tuple(document["coordinates"]["wave_axes"]) == ("x^3", "y^4")
    cosets = document["coordinates"]["power_cosets"]
    assert [c["coordinate"] for c in cosets] == ["t^4"] and cosets[0]["subgroup_size"] == 14  # t^3: a bijection mod 29
    assert sorted(k for c in cosets[0]["cosets"] for k in c["keys"]) == document["key_frequencies"]
    waves = document["coordinates"]["value_waves"]  # W_E as least-squares waves over t, t^3, t^4
    assert [w["coordinate"] for w in waves] == ["t", "t^3", "t^4"] and [w["n_values"] for w in waves] == [29, 29, 8]
    assert waves[0]["fve"] == pytest.approx(1.0) and 0.0 <= waves[2]["fve"] <= 1.0
    assert any("least-squares waves" in line for line in document["findings"])
    acts = grid_activations(run.model(run.checkpoint_epochs[-1]), run.task, run.task.split().train)
    assert document["final"]["logit_fve"] >= 0.7 > logit_frequency_fit(acts.logits).fve(document["key_frequencies"])
    rise = document["coordinates"]["marginal_rise"]  # the logits' mean over y, by coset of the fourth powers
    assert rise["averaged_over"] == "y" and rise["waves"] == "x^3 - z"
    assert rise["cosets"] == [c["least"] for c in cosets[0]["cosets"]] and rise["leading"] == rise["cosets"][0]
    assert rise["epoch"] < document["grokking_epoch"] and rise["norms"][0] > 2 * rise["norms"][1]
    assert cosets[0]["cosets"][0]["keys"] == document["key_frequencies"]  # and the keys are that coset's
    from grokscope.report import build_report
    from grokscope.report.figures import marginal_waves
    from grokscope.analysis.registry import load_analysis

    page = build_report(run.paths.root, tmp_path / "report.html").read_text()
    assert "What x alone predicts comes first" in page and f"led by the coset {rise['leading']}·G" in page
    figure = marginal_waves(load_analysis(run.paths.root).primary, pd.read_parquet(run.paths.root / "progress.parquet"))
    assert [trace.name.split("·")[0] for trace in figure.data] == [str(c) for c in rise["cosets"]]


def test_key_frequencies_sorted_into_the_cosets_of_a_powers_values():
    """Known answers: mod 113 the fourth powers H are 28 residues with -1 among them, so G = H and
    there are 4 cosets; mod 29 H has 7 residues without -1, so G = ±H has 14 and 2 cosets. Each
    coset's wave mean is the same for every k in it (checked for each k by brute force)."""
    from grokscope.analysis.value_grid import power_cosets

    size, cosets = power_cosets(113, 4, [2, 8, 14, 5, 3])
    fourth = {pow(t, 4, 113) for t in range(1, 113)}
    assert size == 28 == len(fourth) and len(cosets) == 4
    by_least = {c.least: c for c in cosets}
    assert by_least[1].keys == [2, 8, 14] and by_least[5].keys == [5] and by_least[3].keys == [3]
    assert cosets[0].least == 1 and cosets[0].wave_mean == pytest.approx(30 / 113, abs=1e-3)  # sum: 29.99
    size, cosets = power_cosets(29, 4, [1, 4, 6, 9, 2])
    assert size == 14 and [c.keys for c in cosets] == [[1, 4, 6, 9], [2]]
    for p, e in ((113, 4), (41, 4), (29, 4), (113, 7)):
        _, cosets = power_cosets(p, e, list(range(1, p)))
        assert sorted(k for c in cosets for k in c.keys) == list(range(1, p))  # a partition
        for c in cosets:
            for k in c.keys[:5]:
                mean = abs(sum(complex(math.cos(2 * math.pi * k * pow(t, e, p) / p), math.sin(2 * math.pi * k * pow(t, e, p) / p))
                               for t in range(p))) / p
                assert mean == pytest.approx(c.wave_mean, abs=1e-9)
        assert [c.wave_mean for c in cosets] == sorted((c.wave_mean for c in cosets), reverse=True)


def test_the_marginal_waves_of_the_algorithm_are_the_wave_means():
    """Over (x^3, y^4) mod 29: the mean over y of cos(w_k(u + v - z)) is |m_k| cos(w_k(u - z) + arg
    m_k), m_k the mean of exp(2 pi i k v) over the tokens, so its marginal amplitude at k is the
    coset's wave mean; a planted x-only wave 3 cos(w_2(u - z)) has amplitude 3; nothing else."""
    from grokscope.analysis.value_grid import coset_members

    grid = planted_y4_grid()
    z = torch.arange(P).double()
    w = lambda k: 2 * math.pi * k / P  # noqa: E731
    logits = 3 * torch.cos(w(2) * (grid.u.double()[:, None, None] - z)) + torch.cos(w(5) * (grid.phase()[..., None] - z))
    logits = logits.expand(P, P, P)  # [x, y, z]
    amplitudes = grid.marginal_waves(logits)
    means = {k: c.wave_mean for c in coset_members(P, grid.v) for k in c.members}
    assert amplitudes[1] == pytest.approx(3.0) and amplitudes[4] == pytest.approx(means[5])
    assert amplitudes[[k for k in range(P // 2) if k not in (1, 4)]].abs().max() < 1e-10
    measures = grid.progress_measures(logits)
    assert list(measures) == [f"marginal_wave_coset{c.least}" for c in coset_members(P, grid.v)]
    coset_of = {k: c.least for c in coset_members(P, grid.v) for k in c.members}
    assert measures[f"marginal_wave_coset{coset_of[2]}"] >= 3.0 - 1e-9
    assert grid.one_sided()[0] == "x" and ValueGrid(p=P, u=grid.v, v=grid.u).one_sided()[0] == "y"
    both = ValueGrid(p=P, u=power_values(P, 4), v=power_values(P, 4))
    assert both.one_sided() is None and both.marginal_waves(logits) is None and both.progress_measures(logits) == {}


def test_marginal_rise_is_the_first_checkpoint_at_half_the_peak():
    import pandas as pd

    from grokscope.analysis.pipeline import marginal_rise

    progress = pd.DataFrame({"epoch": [0, 10, 100, 1000], "marginal_wave_coset1": [0.1, 1.0, 3.0, 4.0],
                             "marginal_wave_coset5": [0.1, 2.0, 4.0, 3.0]})
    rise = marginal_rise(planted_y4_grid(), progress, ("x^3", "y^4"))
    assert (rise.epoch, rise.peak_epoch, rise.cosets, rise.leading) == (100, 100, [1, 5], 5)  # totals 5.0 and 5.0: the first
    assert rise.norms == [3.0, 4.0] and (rise.averaged_over, rise.waves) == ("y", "x^3 - z")
    assert marginal_rise(planted_y4_grid(), progress[["epoch"]], ("x^3", "y^4")) is None
