"""Group composition: the groups' tables, their irreducible representations (checked against
the theory), the analysis on planted answers, and on real runs through both pipelines."""

import math

import numpy as np
import pytest
import torch

from grokscope import load_preset, load_run, train_run
from grokscope.analysis.group import character_fit, product_terms
from grokscope.analysis.progress import grid_loss
from grokscope.analysis.registry import analyze_run
from grokscope.analysis.representations import Representations, character_table
from grokscope.tasks.groups import build_group

GROUPS = ["cyclic:6", "cyclic:7", "dihedral:5", "dihedral:6", "symmetric:3", "symmetric:4", "symmetric:5",
          "alternating:4", "alternating:5"]


@pytest.mark.parametrize("spec", GROUPS)
def test_tables_are_groups(spec):
    g = build_group(spec)
    T, e, n = g.table, g.identity, g.order
    assert torch.equal(T[T[:, :, None], torch.arange(n)[None, None, :]], T[torch.arange(n)[:, None, None], T[None, :, :]])  # (ab)c = a(bc)
    assert torch.equal(T[e], torch.arange(n)) and torch.equal(T[:, e], torch.arange(n))
    assert torch.equal(T[torch.arange(n), g.inverse], torch.full((n,), e))
    assert all(sorted(row.tolist()) == list(range(n)) for row in T)  # a Latin square


def test_element_maps_are_the_documented_ones():
    d = build_group("dihedral:5")  # token f*N + k is r^k s^f
    assert d.labels[:6] == ("r0", "r1", "r2", "r3", "r4", "r0s")
    assert d.table[1, 5] == 6 and d.table[5, 1] == 9  # r·s = rs, s·r = r^-1 s = r^4 s
    s3 = build_group("symmetric:3")
    assert s3.labels == ("012", "021", "102", "120", "201", "210")
    assert s3.labels[s3.table[1, 2]] == "201"  # (021)∘(102): 0 -> 1 -> 2, 1 -> 0 -> 0, 2 -> 2 -> 1
    assert build_group("alternating:4").order == 12 and build_group("cyclic:9").table[4, 7] == 2


@pytest.mark.parametrize("spec", GROUPS)
def test_the_irreps_are_the_groups_irreps(spec):
    """Σ d² = |G|, row and column orthogonality of the characters, projectors that are
    idempotent, sum to the identity and commute with the group's action, and on each irrep's
    span the regular representation is a homomorphism whose character is d times the irrep's."""
    g = build_group(spec)
    table = character_table(g)
    sizes = np.array([len(c) for c in table.classes])
    chi = table.characters
    assert sum(d * d for d in table.dims) == g.order
    np.testing.assert_allclose((chi * sizes) @ chi.conj().T / g.order, np.eye(len(sizes)), atol=1e-9)
    np.testing.assert_allclose(chi.conj().T @ chi, np.diag(g.order / sizes), atol=1e-9)
    R = Representations.of(g)
    P = R.projectors
    torch.testing.assert_close(P.sum(0), torch.eye(g.order, dtype=torch.float64))
    torch.testing.assert_close(P @ P, P)
    U, blocks = R.basis
    for x in range(g.order):  # the left-regular action: a permutation matrix
        L = _left(g, x)
        torch.testing.assert_close(P @ L, L @ P)
    for r, block in zip(R.irreps, blocks):
        V = U[:, block]
        D = [V.T @ _left(g, x) @ V for x in range(g.order)]
        for x in range(0, g.order, max(1, g.order // 7)):
            for y in range(0, g.order, max(1, g.order // 5)):
                torch.testing.assert_close(D[x] @ D[y], D[int(g.table[x, y])])
        traces = torch.stack([d.trace() for d in D])
        torch.testing.assert_close(traces, torch.from_numpy(r.complex_dim * r.character))


def _left(g, x) -> torch.Tensor:
    L = torch.zeros(g.order, g.order, dtype=torch.float64)
    L[g.table[x], torch.arange(g.order)] = 1.0
    return L


def test_known_character_tables():
    dims = lambda spec: [r.dim for r in Representations.of(build_group(spec)).irreps]  # noqa: E731
    names = lambda spec: [r.name for r in Representations.of(build_group(spec)).irreps]  # noqa: E731
    assert dims("symmetric:4") == [1, 1, 2, 3, 3] and dims("symmetric:5") == [1, 1, 4, 4, 5, 5, 6]
    assert names("symmetric:5")[:4] == ["trivial", "sign", "standard", "standard⊗sign"]
    assert dims("alternating:5") == [1, 3, 3, 4, 5]
    assert dims("alternating:4") == [1, 2, 3]  # ω and ω² paired: one real 2-D irrep
    assert names("dihedral:5") == ["trivial", "r+s-", "rot 1", "rot 2"]
    assert names("cyclic:7") == ["trivial", "freq 1", "freq 2", "freq 3"]


@pytest.mark.parametrize("spec", ["symmetric:4", "dihedral:7", "alternating:4"])
def test_planted_character_logits_give_back_their_irreps(spec):
    """Logits 5 chi_i(a·b·c^-1) + 3 chi_j(a·b·c^-1): the fit names exactly i and j, with
    alphas 5 and 3 and a fit of 1; their a·b terms are the whole logits."""
    g = build_group(spec)
    R = Representations.of(g)
    i, j = 1, len(R.irreps) - 1
    abc = g.table[g.table[:, :, None], g.inverse[None, None, :]]  # [a, b, c]: a·b·c^-1
    chi = lambda k: torch.from_numpy(R.irreps[k].character)[abc]  # noqa: E731
    logits = 5 * chi(i) + 3 * chi(j)
    alpha, share = character_fit(R, logits)
    assert alpha[i] == pytest.approx(5) and alpha[j] == pytest.approx(3)
    assert float(share[i] + share[j]) == pytest.approx(1.0) and float(share.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(product_terms(R, logits, [i, j]), logits)
    torch.testing.assert_close(product_terms(R, logits, [0]), torch.zeros_like(logits), atol=1e-12, rtol=0)
    labels = g.table
    assert grid_loss(logits - product_terms(R, logits, [i, j]), labels) == pytest.approx(math.log(g.order))


def test_planted_embeddings_and_neurons_name_their_irrep():
    """W_E in one irrep's span, neurons that are products rho(a) rho(b) of another: each
    method names its irrep with share 1."""
    g = build_group("symmetric:4")
    R = Representations.of(g)
    U, blocks = R.basis
    gen = torch.Generator().manual_seed(0)
    W_E = U[:, blocks[3]] @ torch.randn(blocks[3].stop - blocks[3].start, 16, generator=gen, dtype=torch.float64)
    assert R.shares(W_E)[3] == pytest.approx(1.0)
    a_part, b_part = U[:, blocks[2]], U[:, blocks[2]]
    neurons = torch.einsum("ai,bj,ijk->abk", a_part, b_part,
                           torch.randn(a_part.shape[1], b_part.shape[1], 5, generator=gen, dtype=torch.float64))
    fve, best = R.pair_shares(neurons).max(0)
    assert best.tolist() == [2] * 5 and fve.min() == pytest.approx(1.0)


def test_cyclic_groups_get_the_fourier_pipelines_key_frequencies(grokked, tmp_path):
    """(x + y) mod 31 as a modular task and as cyclic:31, same seed: the same training (the
    datasets and splits coincide), and the group pipeline's key representations are the
    Fourier pipeline's key frequencies."""
    modular_run, modular = grokked
    config = modular_run.config.with_overrides(["task.name=group", "task.group=cyclic:31"])
    train_run(config, tmp_path / "cyclic")
    run = load_run(tmp_path / "cyclic")
    assert run.metrics.equals(modular_run.metrics)
    group = analyze_run(run)
    assert [int(name.split()[1]) for name in group["key_representations"]] == modular["key_frequencies"]
    assert group["verdict"]["implements_composition"] == modular["verdict"]["implements_fourier_multiplication"]
    frequencies = {m: [int(name.split()[1]) for name in v] for m, v in group["key_representations_by_method"].items()}
    assert frequencies == modular["key_frequencies_by_method"]


def test_group_configs_are_checked():
    with pytest.raises(ValueError, match="task.group must be"):
        load_preset("quick", ["task.name=group", "task.group=klein"])
    with pytest.raises(ValueError, match="between 2 and 6"):
        load_preset("quick", ["task.name=group", "task.group=symmetric:7"])


@pytest.mark.parametrize("preset", ["group_c113", "group_d59", "group_s4", "group_s5", "group_a5"])
def test_every_group_preset_runs_analyses_and_reports(tmp_path, preset):
    from typer.testing import CliRunner

    from grokscope.cli import app

    small = ["model.d_model=16", "model.n_heads=2", "model.d_head=8", "model.d_mlp=32", "train.epochs=12",
             "train.checkpoint_every=6"]
    args = ["run", "--preset", preset, "--out", str(tmp_path / "r")] + [a for o in small for a in ("--set", o)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "report.html").read_text()
    assert "Representations over training" in page and "key representations by method" in page
    stored = __import__("grokscope").load_analysis(tmp_path / "r")
    assert stored.primary.format == "grokscope.group-analysis/1" and len(stored.primary.irreps) >= 4


def test_a_sweep_of_group_runs_tabulates_their_key_representations(tmp_path):
    from grokscope.sweeps import SweepSpec, run_local, summarize

    text = ('preset = "group_a5"\n[set]\n"model.d_model" = 16\n"model.n_heads" = 2\n"model.d_head" = 8\n'
            '"model.d_mlp" = 32\n"train.epochs" = 10\n"train.checkpoint_every" = 5\n'
            '[axes]\n"task.group" = ["dihedral:5", "symmetric:3"]\n')
    assert run_local(SweepSpec.from_text(text, "groups"), tmp_path, workers=1) == {}
    table = summarize(tmp_path)
    assert {"key_representations", "character_fve", "implements_composition"} <= set(table.columns)
    assert (table["status"] == "done").all() and not table["implements_composition"].any()
