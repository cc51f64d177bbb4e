import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grokscope.config import RunConfig, TrainConfig, load_preset, preset_names
from grokscope.models import TransformerConfig
from grokscope.tasks import ModularConfig


def test_presets_ship_and_load():
    assert {"nanda2023", "quick"} <= set(preset_names())
    cfg = load_preset("nanda2023")
    assert (cfg.task.p, cfg.task.frac_train, cfg.task.seed, cfg.task.op) == (113, 0.3, 0, "add")
    assert (cfg.model.n_layers, cfg.model.d_model, cfg.model.n_heads, cfg.model.d_head, cfg.model.d_mlp) == (1, 128, 4, 32, 512)
    assert cfg.model.act_fn == "relu" and cfg.model.normalization_type is None
    assert (cfg.train.lr, cfg.train.weight_decay, cfg.train.betas) == (1e-3, 1.0, (0.9, 0.98))
    assert (cfg.train.warmup_steps, cfg.train.epochs, cfg.train.loss_dtype) == (10, 40_000, "float64")


def test_saved_dict_names_every_part_kind():
    d = load_preset("nanda2023").to_dict()
    assert d["task"]["name"] == "modular" and d["model"]["kind"] == "transformer"
    assert d["train"]["kind"] == "full_batch" and d["format"] == "grokscope.run/1"


@settings(max_examples=50, deadline=None)
@given(
    p=st.integers(2, 500), frac=st.floats(0.05, 0.95), seed=st.integers(0, 2**31),
    op=st.sampled_from(["add", "sub", "mul"]), d_model=st.integers(1, 256),
    lr=st.floats(1e-6, 1.0), wd=st.floats(0, 10), dtype=st.sampled_from(["float32", "float64"]),
    stop=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_config_round_trips(p, frac, seed, op, d_model, lr, wd, dtype, stop):
    if int(frac * p * p) in (0, p * p):
        return
    cfg = RunConfig(
        task=ModularConfig(op=op, p=p, frac_train=frac, seed=seed),
        model=TransformerConfig(d_model=d_model),
        train=TrainConfig(lr=lr, weight_decay=wd, loss_dtype=dtype, stop_after_grok=stop),
    )
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    text = [f"task.p={p}", f"task.frac_train={frac!r}", f"train.lr={lr!r}", f"train.stop_after_grok={stop}"]
    assert cfg.with_overrides(text) == cfg


def test_overrides_are_type_checked():
    cfg = load_preset("nanda2023", ["task.p=97", "train.betas=0.8,0.9", "model.act_fn=gelu",
                                    "model.normalization_type=LN", "train.stop_after_grok=none"])
    assert cfg.task.p == 97 and cfg.train.betas == (0.8, 0.9) and cfg.model.act_fn == "gelu"
    assert cfg.model.normalization_type == "LN" and cfg.train.stop_after_grok is None


@pytest.mark.parametrize("override, message", [
    ("task.p=1", "task.p must be at least 2"),
    ("task.p=abc", "task.p must be an integer"),
    ("task.frac_train=0", "task.frac_train must be in (0, 1)"),
    ("task.frac_train=1.0", "task.frac_train must be in (0, 1)"),
    ("task.op=pow", "task.op must be one of"),
    ("task.name=nope", "unknown task 'nope'"),
    ("model.kind=nope", "unknown model kind 'nope'"),
    ("task.colour=red", "unknown config key 'task.colour'"),
    ("trian.lr=1", "unknown config key 'trian.lr'"),
    ("train.lr", "must look like part.key=value"),
    ("train.epochs=0", "train.epochs must be positive"),
    ("train.epochs=-5", "train.epochs must be positive"),
    ("train.lr=0", "train.lr must be positive"),
    ("train.loss_dtype=float16", "train.loss_dtype must be one of"),
    ("model.d_model=0", "model.d_model must be at least 1"),
    ("train.betas=0.9", "train.betas must have 2 entries"),
    ("train.train_biases=maybe", "unknown config key"),
    ("model.train_biases=maybe", "must be true or false"),
])
def test_bad_values_give_one_clear_error(override, message):
    with pytest.raises(ValueError, match=None) as err:
        load_preset("nanda2023", [override])
    assert message in str(err.value)


def test_div_needs_a_prime_and_pow_sum_owns_exponents():
    with pytest.raises(ValueError, match="needs a prime p"):
        load_preset("nanda2023", ["task.op=div", "task.p=91"])
    assert load_preset("nanda2023", ["task.op=div", "task.p=97"]).task.n_examples == 97 * 96
    with pytest.raises(ValueError, match="exponents of op=pow_sum"):
        load_preset("nanda2023", ["task.a=3"])
    assert load_preset("nanda2023", ["task.op=pow_sum", "task.a=3", "task.b=3"]).task.a == 3


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        load_preset("nope")


def test_decay_by_name():
    cfg = TrainConfig()
    assert cfg.decays("blocks.0.attn.W_Q") and cfg.decays("embed.W_E")
    assert not cfg.decays("blocks.0.attn.b_Q") and not cfg.decays("ln_final.w")
    cfg = TrainConfig(decay_params="W_in, W_out")
    assert cfg.decays("blocks.0.mlp.W_in") and not cfg.decays("embed.W_E")


def test_config_diff_names_changed_keys():
    a, b = load_preset("nanda2023"), load_preset("nanda2023", ["train.lr=3e-3", "task.p=97"])
    assert a.diff(b) == ["task.p", "train.lr"]
