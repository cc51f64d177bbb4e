"""sweep compare (sweeps/compare.py): Kruskal-Wallis H over groups of members, its permutation
p-value against exact answers for small separated designs, and the grouping of a summary."""

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from grokscope.cli import app
from grokscope.errors import GrokscopeError
from grokscope.sweeps.compare import GroupValues, LeftOut, compare_groups, kruskal_wallis, ranks, sweep_groups

NONE = LeftOut(unfinished=[], dropped=[], no_value=[])


def groups(*values) -> list[GroupValues]:
    return [GroupValues(group={"g": i}, values=list(v)) for i, v in enumerate(values)]


def test_ranks_average_ties_and_put_infinity_last():
    assert ranks(np.array([30.0, 10.0, 20.0, 10.0, np.inf, np.inf])).tolist() == [4.0, 1.5, 3.0, 1.5, 5.5, 5.5]


def test_h_is_the_textbook_statistic():
    """Ranks 1-3 against 4-6: H = 12 / (6 * 7) * (3 * 1.5^2 + 3 * 1.5^2) = 3.857."""
    h = kruskal_wallis(np.arange(1.0, 7.0), np.array([[0, 0, 0, 1, 1, 1]]), np.array([3.0, 3.0]))
    assert h[0] == pytest.approx(27 / 7)


@pytest.mark.parametrize("design, exact", [
    (([1, 2, 3], [4, 5, 6]), 2 / 20),  # two groups of three apart: 2 of the C(6, 3) = 20 splits are as extreme
    (([1, 2, 3], [4, 5, 6], [7, 8, 9]), 6 / 1680),  # 3! of the 9! / 3!^3 = 1,680 splits
    (([None, None, None], [10, 20, 30]), 2 / 20),  # never reached ranks above every epoch
])
def test_permutation_p_matches_the_exact_answer(design, exact):
    result = compare_groups(groups(*design), "grokking_epoch", ["g"], NONE, permutations=40_000, seed=1)
    assert result.p_value == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 40_000) + 1e-4)
    assert ("differ beyond" in result.conclusion(0.05)) == (exact < 0.05)


def test_identical_groups_give_h_zero_and_p_one():
    result = compare_groups(groups([5, 5], [5, 5, 5]), "m", ["g"], NONE, permutations=1_000)
    assert result.statistic == pytest.approx(0) and result.p_value == 1.0
    assert "no difference" in result.conclusion()
    with pytest.raises(GrokscopeError, match="two groups"):
        compare_groups(groups([1, 2]), "m", ["g"], NONE)


def write_summary(path):
    path.mkdir()
    pd.DataFrame({
        "member": ["a0", "a1", "b0", "b1", "c0", "d0"],
        "k": [1, 1, 2, 2, 3, 4],
        "status": ["done", "done", "done", "done", "done", "incomplete"],
        "grokking_epoch": [100.0, 200.0, None, 300.0, 50.0, None],
        "logit_fve": [0.9, None, 0.8, 0.7, 0.6, None],
    }).to_parquet(path / "summary.parquet")


def test_sweep_groups_groups_drops_and_leaves_out(tmp_path):
    write_summary(tmp_path / "s")
    found, excluded = sweep_groups(tmp_path / "s", ["k"], "grokking_epoch")
    assert [(g.group["k"], g.values) for g in found] == [(1, [100.0, 200.0]), (2, [None, 300.0]), (3, [50.0])]
    assert excluded == LeftOut(unfinished=["d0"], dropped=[], no_value=[]) and found[1].sorted_values() == [300.0, None] and found[1].median() is None
    found, excluded = sweep_groups(tmp_path / "s", ["k"], "logit_fve", drop=[{"k": "3"}])
    assert [(g.group["k"], g.values) for g in found] == [(1, [0.9]), (2, [0.8, 0.7])]
    assert excluded == LeftOut(unfinished=["d0"], dropped=["c0"], no_value=["a1"])
    assert excluded.describe() == "1 unfinished (d0); 1 dropped; 1 without a value (a1)"


def test_cli_compares_a_published_sweep_and_refuses_bad_input(tmp_path):
    """The published weight_decay sweep (4 values, seeds 0-2, fully separated): p near the exact
    4! / (12! / 3!^4) = 6.5e-5."""
    runner = CliRunner()
    result = runner.invoke(app, ["sweep", "compare", "docs/results/weight_decay", "--by", "train.weight_decay",
                                 "--permutations", "20000"])
    assert result.exit_code == 0, result.output
    p = float(re.search(r"; p = ([0-9.e-]+)", result.stdout).group(1))
    assert p < 3e-4 and "differ beyond the spread" in result.stdout
    write_summary(tmp_path / "s")
    bad = runner.invoke(app, ["sweep", "compare", str(tmp_path / "s"), "--by", "nope"])
    assert bad.exit_code != 0 and "no column nope" in bad.output
    bad = runner.invoke(app, ["sweep", "compare", str(tmp_path / "s"), "--by", "k", "--drop", "x=1"])
    assert bad.exit_code != 0 and "--drop takes KEY=VALUE" in bad.output
    bad = runner.invoke(app, ["sweep", "compare", str(tmp_path), "--by", "k"])
    assert bad.exit_code != 0 and "no summary.parquet" in bad.output
