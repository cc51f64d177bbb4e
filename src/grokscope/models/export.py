"""Export to TransformerLens (optional extra ``grokscope[lens]``) with identical logits.

TransformerLens 4.x: ``TransformerBridge.boot_native(TransformerBridgeConfig(...))`` and our
state dict converted by ``convert_tl_checkpoint`` (no weight processing, so logits are
exact). TransformerLens 3.x: ``HookedTransformer(HookedTransformerConfig(...))`` loads our
state dict as it is, since the keys and shapes are the same.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from grokscope.errors import GrokscopeError
from grokscope.models.transformer import Transformer


def transformer_lens_config(model: Transformer) -> dict[str, Any]:
    """The HookedTransformerConfig / TransformerBridgeConfig fields describing ``model``."""
    cfg = model.cfg
    return {
        "n_layers": cfg.n_layers, "d_model": cfg.d_model, "d_head": cfg.d_head, "n_heads": cfg.n_heads,
        "d_mlp": cfg.d_mlp, "d_vocab": model.d_vocab, "d_vocab_out": model.d_vocab_out,
        "n_ctx": model.n_ctx, "act_fn": cfg.act_fn, "normalization_type": cfg.normalization_type,
        "attn_only": cfg.attn_only, "positional_embedding_type": "standard",
    }


def to_transformer_lens(model: Transformer):
    """A TransformerLens model (4.x bridge, or 3.x HookedTransformer) with ``model``'s weights."""
    try:
        import transformer_lens
    except ImportError:
        raise GrokscopeError("TransformerLens is not installed: pip install 'grokscope[lens]'") from None
    if not isinstance(model, Transformer):
        raise GrokscopeError(f"only transformer models export to TransformerLens, not {type(model).__name__}")
    if model.cfg.attention_rate != 1.0:
        raise GrokscopeError(f"TransformerLens has no constant-attention mix; this model's attention rate is "
                             f"{model.cfg.attention_rate:g} (only 1 exports)")
    fields = transformer_lens_config(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    major = int(version("transformer-lens").split(".")[0])
    if major < 4:
        tl_model = transformer_lens.HookedTransformer(transformer_lens.HookedTransformerConfig(**fields))
        tl_model.load_state_dict(state, strict=True)
        return tl_model.eval()
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    bridge_cfg = TransformerBridgeConfig(**fields)
    bridge = TransformerBridge.boot_native(bridge_cfg)
    bridge.load_state_dict(convert_tl_checkpoint(state, bridge_cfg), strict=True)
    return bridge.eval()
