"""Models with TransformerLens names: weights ``W_E, W_pos, W_Q, ..., W_in, W_out, W_U``, hooks ``hook_*``."""

from grokscope.models.base import MODELS, ModelConfig
from grokscope.models.export import to_transformer_lens, transformer_lens_config
from grokscope.models.hooks import HookedRootModule, HookPoint
from grokscope.models.mlp import MLPConfig, MLPModel
from grokscope.models.transformer import Transformer, TransformerConfig

__all__ = ["MODELS", "ModelConfig", "HookedRootModule", "HookPoint", "MLPConfig", "MLPModel", "Transformer", "TransformerConfig",
           "to_transformer_lens", "transformer_lens_config"]
