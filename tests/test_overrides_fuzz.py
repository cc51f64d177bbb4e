"""Arbitrary overrides of every key give a valid config or one clear error, never a traceback."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grokscope import GrokscopeError, load_preset
from grokscope.config import flatten
from grokscope.training.loop import check_compatible

PRESETS = ["nanda2023", "quick", "digit_add5", "sort", "mlp", "primality"]
KEYS = sorted({(name, key) for name in PRESETS for key in flatten(load_preset(name).to_dict())
               if key != "format"})

values = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "none", "null", "true", "false", "nan", "-inf", "1e309", "0", "-1", "1,2", "0.9,0.98",
                     "add", "relu", "LN", "ema", "float32", "2**64", "1_000", " 3 ", "[1]", "{}", "é", "W_*"]),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(KEYS), values)
def test_any_value_of_any_key_is_a_config_or_one_clear_error(preset_key, value):
    preset, key = preset_key
    try:
        config = load_preset(preset, [f"{key}={value}"])
    except ValueError as e:  # the CLI prints it as one "error:" line and exits 2
        assert str(e) and "\n" not in str(e).strip()
        return
    try:
        check_compatible(config, max_memory=2**40)  # the rest of what train checks before writing
    except GrokscopeError as e:
        assert str(e) and "\n" not in str(e).strip()


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=30))
def test_any_override_string_is_a_config_or_one_clear_error(text):
    try:
        load_preset("quick", [text])
    except ValueError as e:
        assert str(e)
