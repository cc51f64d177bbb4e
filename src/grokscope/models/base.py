"""Model configs and their registry: ``model.kind`` names the architecture."""

from __future__ import annotations

import torch

from grokscope.models.components import init_paper_weights
from grokscope.models.hooks import HookedRootModule
from grokscope.schema import ConfigPart, Registry


class ModelConfig(ConfigPart):
    """Base of every model's config; the task supplies ``d_vocab``, ``d_vocab_out`` and ``n_ctx``."""

    def build(self, d_vocab: int, d_vocab_out: int, n_ctx: int) -> "HookedRootModule":
        """The (uninitialised) model for a task with these sizes."""
        raise NotImplementedError

    def summary(self) -> str:
        """One line describing the architecture, for reports."""
        raise NotImplementedError


MODELS: Registry[ModelConfig] = Registry("model kind")


class GrokscopeModel(HookedRootModule):
    """What every model here has: ``cfg.d_model``, ``d_vocab``, ``embed`` and ``unembed``; the
    paper's initialisation; ``W_E`` and ``W_U`` as in TransformerLens."""

    def init_weights(self, seed: int) -> None:
        """The paper's initialisation (``init_paper_weights``)."""
        init_paper_weights(self, seed, self.cfg.d_model, self.d_vocab)

    @property
    def W_E(self) -> torch.Tensor:  # [d_vocab, d_model]
        return self.embed.W_E

    @property
    def W_U(self) -> torch.Tensor:  # [d_model, d_vocab_out]
        return self.unembed.W_U
