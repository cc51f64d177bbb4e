"""Shared fixtures: tiny configs sized so that each unit test runs in well under a second."""

import pytest

from grokscope.blas import choose_strict_blas

choose_strict_blas()  # before torch's first matrix product, as the grokscope command does (grokscope/blas.py)

import torch  # noqa: E402

from grokscope import load_preset, load_run, train_run  # noqa: E402
from grokscope.analysis.registry import analyze_run  # noqa: E402


def train_interrupted(config, out, epoch: int, resume_config=None):
    """Train ``config`` into ``out``, stop it after epoch ``epoch``'s metrics row (as a Ctrl-C
    would), then resume it (with ``resume_config`` if given); returns the resumed run's summary."""
    def interrupt(row):
        if row["epoch"] == epoch:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(config, out, on_epoch=interrupt)
    assert not load_run(out).complete
    return train_run(resume_config or config, out)


@pytest.fixture
def tiny_config():
    """(x + y) mod 7 with a 1-layer transformer of width 16: trains at ~1 ms per epoch."""
    return load_preset("quick", [
        "task.p=7", "task.frac_train=0.5", "model.d_model=16", "model.n_heads=2",
        "model.d_head=8", "model.d_mlp=32", "train.epochs=40", "train.checkpoint_every=20",
        "train.eval_every=5",
    ])


@pytest.fixture(autouse=True)
def _isolate_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def trained_and_analysed(tmp_path_factory, name: str, overrides: list[str]):
    out = tmp_path_factory.mktemp("runs") / name
    train_run(load_preset("quick", overrides), out)
    run = load_run(out)
    return run, analyze_run(run)


@pytest.fixture(scope="session")
def grokked(tmp_path_factory):
    """A real (x + y) mod 31 run trained 1000 epochs past grokking, and its analysis."""
    return trained_and_analysed(tmp_path_factory, "grokked", ["train.stop_after_grok=1000"])


@pytest.fixture(scope="session")
def memorising(tmp_path_factory):
    """The same set-up stopped at epoch 400, while it has only memorised, and its analysis."""
    return trained_and_analysed(tmp_path_factory, "memorising", ["train.epochs=400"])
