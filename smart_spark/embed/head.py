"""The sentence-transformers modules after the transformer: Pooling, Dense and Normalize (the head).

All run in float32 on (b, t, h) token embeddings and a right-padded (b, t) attention mask, as
sentence-transformers runs them.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from smart_spark.embed.model_folder import read_json
from smart_spark.errors import SmartError


class Dense(torch.nn.Module):
    """A sentence-transformers ``Dense`` module: ``activation(x @ W.T + b)`` (+ optional residual)."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        config = read_json(os.path.join(folder, "config.json"))
        if not isinstance(config, dict):
            raise SmartError(f"--model: Dense folder {folder} has no config.json")
        n_in, n_out = int(config["in_features"]), int(config["out_features"])
        self.linear = torch.nn.Linear(n_in, n_out, bias=config.get("bias", True))
        self.use_residual = bool(config.get("use_residual", False))
        if self.use_residual and n_in != n_out:
            self.residual = torch.nn.Linear(n_in, n_out, bias=False)
        # named as in sentence-transformers, so an activation with parameters (PReLU) loads them too
        self.activation_function = _activation(config.get("activation_function"), folder)
        weights = _load_weights(folder)
        expected = set(self.state_dict())
        missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
        if missing or unexpected:
            raise SmartError(f"--model: Dense folder {folder}: its weights do not fit the layer its "
                             f"config.json describes: missing keys {missing}, unexpected keys {unexpected}")
        try:
            self.load_state_dict(weights, strict=True)
        except RuntimeError as e:  # same keys, wrong shapes
            detail = " ".join(str(e).split())
            raise SmartError(f"--model: Dense folder {folder}: its weights do not fit the layer its "
                             f"config.json describes: {detail}") from e

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation_function(self.linear(x))
        if self.use_residual:
            out = out + (self.residual(x) if hasattr(self, "residual") else x)
        return out


def _activation(name: str | None, folder: str) -> torch.nn.Module:
    """A ``torch.nn`` activation module from its dotted class name (Tanh when unset, as in ST)."""
    if name is None:
        return torch.nn.Tanh()
    module_name, _, cls_name = name.rpartition(".")
    cls = getattr(importlib.import_module(module_name), cls_name, None) if name.startswith("torch.") else None
    if not (inspect.isclass(cls) and issubclass(cls, torch.nn.Module)):
        raise SmartError(f"--model: Dense folder {folder}: unsupported activation {name}")
    return cls()


def _load_weights(folder: str) -> dict[str, torch.Tensor]:
    """The state dict saved in a module folder (``model.safetensors`` or ``pytorch_model.bin``)."""
    st_file, bin_file = os.path.join(folder, "model.safetensors"), os.path.join(folder, "pytorch_model.bin")
    try:
        if os.path.isfile(st_file):
            from safetensors.torch import load_file

            return load_file(st_file)
        if os.path.isfile(bin_file):
            return torch.load(bin_file, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: safetensors, pickle and torch each raise their own
        detail = " ".join(str(e).split())
        raise SmartError(f"--model: module folder {folder}: cannot read its weights: {detail}") from e
    raise SmartError(f"--model: module folder {folder} has no model.safetensors or pytorch_model.bin")


def pool(
    token_embeddings: torch.Tensor, mask: torch.Tensor, modes: Sequence[str], prompt_length: int
) -> torch.Tensor:
    """sentence-transformers pooling of (b, t, h) float32 token embeddings under a right-padded (b, t)
    mask; returns (b, h * len(modes)). ``prompt_length`` > 0 leaves that many leading tokens out."""
    original = mask
    if prompt_length:
        mask = mask.clone()
        mask[:, :prompt_length] = 0
    maskf = mask.unsqueeze(-1).to(token_embeddings.dtype)
    out: list[torch.Tensor] = []
    for mode in modes:
        if mode == "cls":
            first = mask.to(torch.int).argmax(dim=1)
            out.append(token_embeddings[torch.arange(len(first)), first])
        elif mode == "max":
            out.append(token_embeddings.masked_fill(maskf == 0, float("-inf")).max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            count = torch.clamp(maskf.sum(dim=1), min=1e-9)
            out.append((token_embeddings * maskf).sum(dim=1) / (count if mode == "mean" else count.sqrt()))
        elif mode == "weightedmean":
            weights = torch.arange(1, token_embeddings.shape[1] + 1, device=mask.device, dtype=maskf.dtype)
            weights = weights.view(1, -1, 1) - original.to(torch.int32).argmax(dim=1).view(-1, 1, 1)
            wmask = maskf * weights
            out.append((token_embeddings * wmask).sum(dim=1) / torch.clamp(wmask.sum(dim=1), min=1e-9))
        else:  # lasttoken
            values, idx = mask.flip(1).max(1)
            idx = torch.where(values == 0, mask.shape[1] - 1, idx)
            last = mask.shape[1] - idx - 1
            out.append((token_embeddings * maskf)[torch.arange(len(last)), last])
    return torch.cat(out, dim=-1)


def apply_head(tokens: torch.Tensor, mask: torch.Tensor, modules: Sequence[tuple], dense: Sequence[Dense],
               prompt_length: int) -> torch.Tensor:
    """The Pooling, Dense and Normalize ``modules`` (:attr:`ModelSpec.modules
    <smart_spark.embed.model_folder.ModelSpec.modules>`, in order; ``dense``: the loaded Dense layers in
    their order) over (b, t, h) float32 token embeddings under the (b, t) mask → (b, dim).
    ``prompt_length``: leading prompt tokens a Pooling module without ``include_prompt`` leaves out."""
    emb = tokens
    layers = iter(dense)
    for module in modules:
        if module[0] == "pool":
            emb = pool(tokens, mask, module[1], 0 if module[2] else prompt_length)
        elif module[0] == "dense":
            emb = next(layers)(emb)
        else:
            emb = F.normalize(emb, p=2, dim=-1)
    return emb
