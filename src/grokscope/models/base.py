"""Model configs and their registry: ``model.kind`` names the architecture."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grokscope.schema import ConfigPart, Registry

if TYPE_CHECKING:
    from grokscope.models.hooks import HookedRootModule


class ModelConfig(ConfigPart):
    """Base of every model's config; the task supplies ``d_vocab``, ``d_vocab_out`` and ``n_ctx``."""

    def build(self, d_vocab: int, d_vocab_out: int, n_ctx: int) -> "HookedRootModule":
        """The (uninitialised) model for a task with these sizes."""
        raise NotImplementedError

    def summary(self) -> str:
        """One line describing the architecture, for reports."""
        raise NotImplementedError


MODELS: Registry[ModelConfig] = Registry("model kind")
