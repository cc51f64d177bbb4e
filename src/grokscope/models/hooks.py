"""Hook points named as in TransformerLens: read or patch any activation by name.

A ``HookPoint`` is an identity module; its name is its dotted path in the module tree
(``blocks.0.attn.hook_pattern``), set by ``HookedRootModule.setup()``. Hook functions have
TransformerLens's signature ``fn(activation, hook) -> activation | None``; a returned tensor
replaces the activation.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence, Union

import torch
from torch import nn

HookFn = Callable[[torch.Tensor, "HookPoint"], Union[torch.Tensor, None]]
NameFilter = Union[str, Callable[[str], bool], Sequence[str], None]


class HookPoint(nn.Module):
    """Identity on its input; the place hooks attach to."""

    def __init__(self) -> None:
        super().__init__()
        self.name: str = ""

    def add_hook(self, fn: HookFn) -> torch.utils.hooks.RemovableHandle:
        """Call ``fn(activation, hook=self)`` on every forward; returns a removable handle."""

        def forward_hook(module: nn.Module, inputs: tuple, output: torch.Tensor):
            return fn(output, hook=self)

        return self.register_forward_hook(forward_hook)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def name_matcher(names: NameFilter) -> Callable[[str], bool]:
    """Turn a name, list of names, predicate or None (everything) into a predicate."""
    if names is None:
        return lambda name: True
    if isinstance(names, str):
        return lambda name: name == names
    if callable(names):
        return names
    wanted = set(names)
    return lambda name: name in wanted


class HookedRootModule(nn.Module):
    """A model whose HookPoints are named by ``setup()`` and reachable through ``hook_dict``."""

    hook_dict: dict[str, HookPoint]

    def setup(self) -> None:
        """Name every HookPoint by its path in ``named_modules()``; call at the end of ``__init__``."""
        self.hook_dict = {}
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
                self.hook_dict[name] = module

    @contextmanager
    def hooks(self, fwd_hooks: Sequence[tuple[NameFilter, HookFn]]) -> Iterator["HookedRootModule"]:
        """Attach ``(name or filter, fn)`` hooks for the duration of the ``with`` block."""
        handles = []
        try:
            for names, fn in fwd_hooks:
                match = name_matcher(names)
                hits = [hp for name, hp in self.hook_dict.items() if match(name)]
                if isinstance(names, str) and not hits:
                    raise KeyError(f"no hook point named '{names}'")
                handles.extend(hp.add_hook(fn) for hp in hits)
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def run_with_hooks(self, *args, fwd_hooks: Sequence[tuple[NameFilter, HookFn]] = (), **kwargs):
        """Forward with temporary hooks; the hooks are removed afterwards, even on error."""
        with self.hooks(fwd_hooks):
            return self(*args, **kwargs)

    def run_with_cache(self, *args, names_filter: NameFilter = None, **kwargs):
        """Forward, returning ``(output, cache)``: a dict of detached activations by hook name,
        in the order they were computed."""
        cache: dict[str, torch.Tensor] = {}

        def save(activation: torch.Tensor, hook: HookPoint) -> None:
            cache[hook.name] = activation.detach()

        output = self.run_with_hooks(*args, fwd_hooks=[(names_filter, save)], **kwargs)
        return output, cache
