"""Checkpoints as safetensors with TransformerLens state-dict keys, written atomically.

``checkpoints/epoch_000100.safetensors`` holds the model's ``state_dict()`` (what a
TransformerLens user loads) with metadata ``epoch`` and ``config``. ``resume.safetensors``
holds the model plus AdamW's moments (``optim.<param>.exp_avg`` ...) of the latest checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open
from torch import nn

from grokscope.atomic import atomic_write
from grokscope.errors import GrokscopeError

CHECKPOINT_FORMAT = "grokscope.checkpoint/1"
OPTIM_FIELDS = ("step", "exp_avg", "exp_avg_sq")


def atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically."""
    atomic_write(path, lambda tmp: save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                                             str(tmp), metadata=metadata))


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; GrokscopeError if missing or corrupt."""
    if not path.is_file():
        raise GrokscopeError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise GrokscopeError(f"checkpoint {path} is corrupt or unreadable ({e})") from None
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise GrokscopeError(f"checkpoint {path} is not a grokscope checkpoint (format {metadata.get('format')!r})")
    return tensors, metadata


def save_weights(model: nn.Module, path: Path, epoch: int, config: dict) -> None:
    """Save ``model.state_dict()`` at ``epoch``."""
    atomic_save(model.state_dict(), path, _metadata(epoch, config))


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load a state dict, with one clear error naming missing, extra or misshapen tensors."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or wrong:
        details = []
        if missing:
            details.append(f"missing {missing[:3]}")
        if extra:
            details.append(f"unexpected {extra[:3]}")
        if wrong:
            k = wrong[0]
            details.append(f"{k} has shape {list(state[k].shape)}, model needs {list(own[k].shape)}")
        raise GrokscopeError(f"checkpoint {source} does not match the model: {'; '.join(details)}")
    model.load_state_dict(state)


def load_weights(model: nn.Module, path: Path) -> int:
    """Load a weights checkpoint into ``model``; returns its epoch."""
    tensors, metadata = read(path)
    load_state(model, tensors, path)
    return int(metadata["epoch"])


def save_resume(model: nn.Module, optimizer: torch.optim.Optimizer, path: Path, epoch: int, config: dict,
                wall_seconds: float, extra: dict[str, torch.Tensor] | None = None) -> None:
    """Save model and optimizer state (and ``extra`` named tensors, e.g. a gradient filter's),
    so training continues bit-for-bit from ``epoch``."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()} | (extra or {})
    names = {id(p): n for n, p in model.named_parameters()}
    for param, state in optimizer.state.items():
        for field in OPTIM_FIELDS:
            tensors[f"optim.{names[id(param)]}.{field}"] = state[field]
    atomic_save(tensors, path, _metadata(epoch, config) | {"wall_seconds": repr(wall_seconds)})


def load_resume(model: nn.Module, optimizer: torch.optim.Optimizer, path: Path) -> tuple[int, dict[str, str], dict[str, torch.Tensor]]:
    """Restore model and optimizer from ``save_resume``'s file; returns its epoch, metadata and
    the other tensors it holds (``extra`` of ``save_resume``)."""
    tensors, metadata = read(path)
    load_state(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path)
    params = dict(model.named_parameters())
    for key in (k for k in tensors if k.startswith("optim.")):
        name, field = key[6:].rsplit(".", 1)
        if name not in params or field not in OPTIM_FIELDS:
            raise GrokscopeError(f"resume state {path} does not match the model ({key})")
        param = params[name]
        optimizer.state[param][field] = tensors[key] if field == "step" else tensors[key].to(param.device)
    extra = {k: v for k, v in tensors.items() if not k.startswith(("model.", "optim."))}
    return int(metadata["epoch"]), metadata, extra


def _metadata(epoch: int, config: dict) -> dict[str, str]:
    return {"format": CHECKPOINT_FORMAT, "epoch": str(epoch), "config": json.dumps(config)}
