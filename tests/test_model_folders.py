"""Model folders as input: every module folder stays inside the folder the cache key hashes, and a Dense
module's weights load strictly (docs/usage.md, --model). Folders are copies of the bundled model."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from safetensors.torch import load_file, save_file  # noqa: E402
from sentence_transformers.sentence_transformer.modules import Dense  # noqa: E402

from smart_spark.embed.encoder import load_encoder  # noqa: E402
from smart_spark.embed.model_folder import default_model_path, model_id  # noqa: E402
from smart_spark.errors import SmartError  # noqa: E402

TEXTS = ["Translate into French: the cat sleeps.", "What is 2 + 2?", "", "a haiku about autumn leaves"]
PRELU = 0.7  # a trained PReLU slope; a fresh PReLU has 0.25


def copy_model(dst: Path) -> Path:
    """The bundled folder copied to ``dst``, its weights a symlink to the bundled file."""
    src = Path(default_model_path())
    dst.mkdir(parents=True)
    for item in src.iterdir():
        if item.is_dir():
            shutil.copytree(item, dst / item.name)
        elif item.suffix == ".safetensors":
            (dst / item.name).symlink_to(item)
        else:
            shutil.copy(item, dst / item.name)
    return dst


def save_dense(folder: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A sentence-transformers Dense module 384 -> 8 with a PReLU activation saved in ``folder``
    (sentence-transformers' own save); returns its (W, b)."""
    torch.manual_seed(seed)
    prelu = torch.nn.PReLU()
    with torch.no_grad():
        prelu.weight.fill_(PRELU)
    dense = Dense(384, 8, activation_function=prelu)
    folder.mkdir(parents=True, exist_ok=True)
    dense.save(str(folder))
    return dense.linear.weight.detach().numpy().copy(), dense.linear.bias.detach().numpy().copy()


def add_module(model: Path, path: str, kind: str = "Dense") -> None:
    """Append a module of ``kind`` with this ``path`` to ``model``'s modules.json (after Normalize)."""
    modules = json.loads((model / "modules.json").read_text())
    modules.append({"idx": len(modules), "name": str(len(modules)), "path": path,
                    "type": f"sentence_transformers.models.{kind}"})
    (model / "modules.json").write_text(json.dumps(modules))


def one_line_error(model: Path) -> str:
    """The SmartError of both the cache key and the encoder for ``model``, checked to be one and the same
    line."""
    with pytest.raises(SmartError) as by_key:
        model_id(str(model))
    with pytest.raises(SmartError) as by_load:
        load_encoder(str(model), device="cpu")
    assert str(by_key.value) == str(by_load.value) and "\n" not in str(by_key.value)
    return str(by_key.value)


def test_dense_inside_the_folder_loads_its_weights_strictly(tmp_path: Path) -> None:
    """The control for the refusals below: a Dense folder inside the model, reached even through ``..``
    that stays inside, gives PReLU(W x + b) of the bundled vectors with the saved slope (0.7)."""
    model = copy_model(tmp_path / "m")
    W, b = save_dense(model / "3_Dense")
    add_module(model, "1_Pooling/../3_Dense")
    enc = load_encoder(str(model), device="cpu")
    assert enc.dim == 8
    y = load_encoder(None, device="cpu").encode(TEXTS).astype(np.float64) @ W.T.astype(np.float64) + b
    np.testing.assert_allclose(enc.encode(TEXTS), np.where(y >= 0, y, PRELU * y), atol=1e-5, rtol=0)


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "transformer"])
def test_module_paths_that_resolve_outside_the_folder_are_refused(tmp_path: Path, how: str) -> None:
    model = copy_model(tmp_path / "m")
    outside = tmp_path / "elsewhere" / "dense"
    save_dense(outside)
    if how == "dotdot":
        add_module(model, "../elsewhere/dense")
        rel, kind = "../elsewhere/dense", "Dense"
    elif how == "absolute":
        add_module(model, str(outside))
        rel, kind = str(outside), "Dense"
    elif how == "symlink":
        (model / "3_Dense").symlink_to(outside, target_is_directory=True)
        add_module(model, "3_Dense")
        rel, kind = "3_Dense", "Dense"
    else:  # the transformer itself taken from the folder above
        modules = json.loads((model / "modules.json").read_text())
        modules[0]["path"] = ".."
        (model / "modules.json").write_text(json.dumps(modules))
        rel, kind = "..", "Transformer"
        outside = tmp_path
    assert one_line_error(model) == (
        f"--model {model}: modules.json gives the {kind} module the path {rel!r}, which resolves to "
        f"{os.path.realpath(outside)}, outside the model folder")


def test_module_in_a_hidden_folder_is_refused(tmp_path: Path) -> None:
    """The cache key skips hidden folders, so a module may not be loaded from one."""
    model = copy_model(tmp_path / "m")
    save_dense(model / ".cache" / "dense")
    add_module(model, ".cache/dense")
    assert one_line_error(model) == (
        f"--model {model}: modules.json gives the Dense module the path '.cache/dense', a hidden folder "
        "(the cache key does not cover hidden folders)")


def test_cache_key_covers_the_module_folders_and_symlinked_files(tmp_path: Path) -> None:
    model = copy_model(tmp_path / "m")
    save_dense(model / "3_Dense", seed=0)
    add_module(model, "3_Dense")
    first = model_id(str(model))
    save_dense(model / "3_Dense", seed=1)  # other Dense weights, same everything else
    second = model_id(str(model))
    assert first.split("@")[0] == second.split("@")[0] == "m" and first != second
    # a weights file that is a symlink to a file outside the folder is hashed by its content
    target = tmp_path / "weights.safetensors"
    shutil.move(model / "3_Dense" / "model.safetensors", target)
    (model / "3_Dense" / "model.safetensors").symlink_to(target)
    assert model_id(str(model)) == second
    save_dense(tmp_path / "seed2", seed=2)
    shutil.copy(tmp_path / "seed2" / "model.safetensors", target)
    assert model_id(str(model)) not in (first, second)


def _rewrite_weights(folder: Path, change: dict[str, torch.Tensor | None]) -> None:
    """Rewrite ``folder``'s model.safetensors: each key of ``change`` removed (None) or set."""
    weights = load_file(str(folder / "model.safetensors"))
    for key, value in change.items():
        weights.pop(key, None)
        if value is not None:
            weights[key] = value
    save_file(weights, str(folder / "model.safetensors"))


def test_dense_weights_that_do_not_fit_are_an_error_naming_the_keys(tmp_path: Path) -> None:
    model = copy_model(tmp_path / "m")
    dense = model / "3_Dense"
    save_dense(dense)
    add_module(model, "3_Dense")
    weight = load_file(str(dense / "model.safetensors"))["linear.weight"]
    prefix = f"--model: Dense folder {dense}: its weights do not fit the layer its config.json describes: "

    _rewrite_weights(dense, {"linear.weight": None, "dense.weight": weight})  # a renamed key
    with pytest.raises(SmartError) as err:
        load_encoder(str(model), device="cpu")
    assert str(err.value) == prefix + "missing keys ['linear.weight'], unexpected keys ['dense.weight']"

    _rewrite_weights(dense, {"dense.weight": None, "linear.weight": weight,
                             "activation_function.weight": None})  # the PReLU slope left out
    with pytest.raises(SmartError) as err:
        load_encoder(str(model), device="cpu")
    assert str(err.value) == prefix + "missing keys ['activation_function.weight'], unexpected keys []"

    _rewrite_weights(dense, {"activation_function.weight": torch.tensor([PRELU]),
                             "linear.weight": weight[:, :100].contiguous()})  # 100 inputs, not 384
    with pytest.raises(SmartError) as err:
        load_encoder(str(model), device="cpu")
    message = str(err.value)
    assert message.startswith(prefix + "Error(s) in loading state_dict for Dense: size mismatch for "
                                       "linear.weight: copying a param with shape torch.Size([8, 100])")
    assert "\n" not in message

    (dense / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SmartError) as err:
        load_encoder(str(model), device="cpu")
    assert str(err.value).startswith(f"--model: module folder {dense}: cannot read its weights: ")


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/weights/elsewhere.safetensors",
                                   ".hidden/model.safetensors", "model-00001-of-00001.safetensors"])
def test_sharded_weights_index_may_name_only_files_of_the_folder(tmp_path: Path, shard: str) -> None:
    model = copy_model(tmp_path / "m")
    index = {"metadata": {}, "weight_map": {"embeddings.word_embeddings.weight": shard}}
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    if shard.startswith("model-"):  # a plain file name: the cache key is computed (nothing is loaded yet)
        assert model_id(str(model)).startswith("m@")
        return
    assert one_line_error(model) == (f"--model {model}: model.safetensors.index.json names the weights file "
                                     f"{shard!r}, not a file of the model folder")
