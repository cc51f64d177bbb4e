import math
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grokscope.tasks import TASKS, ModularConfig
from grokscope.tasks.modular import is_prime

OPS = ["add", "sub", "mul", "div", "pow_sum", "min", "max"]
PRIMES = [p for p in range(2, 60) if is_prime(p)]


def reference_label(op, x, y, p, a=1, b=1):
    """Plain-Python definition of each op, independent of the vectorised code."""
    return {
        "add": (x + y) % p,
        "sub": (x - y) % p,
        "mul": (x * y) % p,
        "div": next(z for z in range(p) if (z * y) % p == x % p) if y else None,
        "pow_sum": (x**a + y**b) % p,
        "min": min(x, y),
        "max": max(x, y),
    }[op]


@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(OPS), p=st.sampled_from(PRIMES), a=st.integers(1, 5), b=st.integers(1, 5))
def test_labels_match_definition_and_are_in_range(op, p, a, b):
    ab = (a, b) if op == "pow_sum" else (1, 1)
    task = ModularConfig(op=op, p=p, a=ab[0], b=ab[1], frac_train=0.5).build()
    data = task.dataset()
    assert data.tokens.shape == (task.config.n_examples, 3) and data.labels.shape == (task.config.n_examples, 1)
    assert task.d_vocab == p + 1 and task.d_vocab_out == p and data.target_positions == (2,)
    assert bool((data.tokens[:, 2] == p).all())
    assert int(data.labels.min()) >= 0 and int(data.labels.max()) < p
    for (x, y, _), (z,) in zip(data.tokens.tolist(), data.labels.tolist()):
        assert z == reference_label(op, x, y, p, *ab)


def test_every_pair_enumerated_once():
    data = ModularConfig(p=13, frac_train=0.3).build().dataset()
    pairs = {tuple(t[:2]) for t in data.tokens.tolist()}
    assert pairs == {(x, y) for x in range(13) for y in range(13)}
    div = ModularConfig(op="div", p=13, frac_train=0.3).build().dataset()
    assert {tuple(t[:2]) for t in div.tokens.tolist()} == {(x, y) for x in range(13) for y in range(1, 13)}


@settings(max_examples=40, deadline=None)
@given(p=st.integers(2, 60), frac=st.floats(0.01, 0.99), seed=st.integers(0, 2**32 - 1))
def test_split_is_disjoint_covering_and_seeded(p, frac, seed):
    n = p * p
    if int(frac * n) in (0, n):
        with pytest.raises(ValueError, match="empty train or test"):
            ModularConfig(p=p, frac_train=frac, seed=seed)
        return
    task = ModularConfig(p=p, frac_train=frac, seed=seed).build()
    torch.manual_seed(0)
    np.random.seed(0)
    split = task.split()
    torch.manual_seed(1234)  # the split must not read global RNGs
    np.random.seed(1234)
    again = ModularConfig(p=p, frac_train=frac, seed=seed).build().split()
    assert torch.equal(split.train, again.train) and torch.equal(split.test, again.test)
    assert len(split.train) == int(frac * n)
    both = torch.cat([split.train, split.test])
    assert len(set(both.tolist())) == n and sorted(both.tolist()) == list(range(n))


def test_split_depends_on_seed():
    a = ModularConfig(p=23, frac_train=0.3, seed=0).build().split()
    b = ModularConfig(p=23, frac_train=0.3, seed=1).build().split()
    assert not torch.equal(a.train, b.train)


def test_canonical_split_size():
    split = ModularConfig().build().split()
    assert (len(split.train), len(split.test)) == (3830, 113 * 113 - 3830)


def test_registry_names_the_task():
    assert "modular" in TASKS.names()
    with pytest.raises(ValueError, match="unknown task"):
        TASKS.get("sorting-hat")


def test_label_statistics_known_answers():
    uniform = ModularConfig(op="add", p=113).build().label_statistics()
    assert uniform["residues_hit"] == 113
    assert uniform["label_entropy_bits"] == pytest.approx(uniform["max_entropy_bits"])
    cube = ModularConfig(op="pow_sum", p=113, a=3, b=3).build().label_statistics()  # x -> x^3 permutes Z_113
    assert cube["label_entropy_bits"] == pytest.approx(math.log2(113))
    seventh = ModularConfig(op="pow_sum", p=113, a=7, b=7).build().label_statistics()
    # 7 divides 112, so x^7 takes only 112/7 + 1 = 17 values: x^7 + y^7 cannot spread evenly
    assert seventh["residues_hit"] < 113 and seventh["top_label_share"] > 2 / 113
    assert seventh["label_entropy_bits"] < cube["label_entropy_bits"] - 0.1


def test_input_statistics_count_each_powers_values():
    """x^e mod p takes (p - 1) / gcd(e, p - 1) non-zero values, plus 0."""
    stats = lambda op, a, b: ModularConfig(op=op, p=113, a=a, b=b).build().input_statistics()  # noqa: E731
    assert stats("add", 1, 1) == {"values_x": 113, "values_y": 113, "bijective_inputs": 2}
    assert stats("pow_sum", 3, 4) == {"values_x": 113, "values_y": 29, "bijective_inputs": 1}
    assert stats("pow_sum", 8, 9) == {"values_x": 15, "values_y": 113, "bijective_inputs": 1}
    assert stats("pow_sum", 7, 7) == {"values_x": 17, "values_y": 17, "bijective_inputs": 0}


def test_random_labels_are_fixed_by_the_seed_and_spread_over_residues():
    labels = lambda seed: ModularConfig(op="random", p=23, seed=seed).build().dataset().labels  # noqa: E731
    assert torch.equal(labels(0), labels(0)) and not torch.equal(labels(0), labels(1))
    assert len(labels(0).unique()) == 23


def test_every_modular_op_names_its_label():
    """The report's task line: each op of ModularConfig has an expression (a new op must add one)."""
    import typing

    from grokscope.tasks.modular import ModularConfig, Op

    assert ModularConfig(op="pow_sum", a=3, b=4).expression == "x^3 + y^4"
    assert ModularConfig(op="sub").expression == "x - y"
    assert all(ModularConfig(op=op, p=113).expression for op in typing.get_args(Op))
