"""Carry the bundled all-MiniLM-L6-v2 to a machine without it, inside the device tool's 64 MiB.

The model's float32 weights are 87 MiB; stored as float16 they are 44 MiB (MiniLM's weights are well
inside float16's range; rounding them changes an embedding by a cosine of about 1e-6). ``pack`` writes
the folder with float16 weights, ``unpack`` writes it back with float32 weights, so that the benchmark
loads an ordinary float32 model (the float32 and bfloat16 runs then start from the same weights)::

    python bench/gpu_model_carry.py pack .gpu/minilm           # here: the bundled model, weights float16
    python bench/gpu_model_carry.py unpack .gpu/minilm /tmp/minilm   # there: float32 again
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def convert(src: str, dst: str, dtype: str) -> None:
    """Copy the model folder ``src`` to ``dst`` with ``model.safetensors`` cast to ``dtype``."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.safetensors"))
    tensors = load_file(str(Path(src) / "model.safetensors"))
    cast = {k: v.to(getattr(torch, dtype)).contiguous() if v.is_floating_point() else v
            for k, v in tensors.items()}
    save_file(cast, str(Path(dst) / "model.safetensors"), metadata={"format": "pt"})


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in ("pack", "unpack"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "pack":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from smart_spark.embed.model_folder import default_model_path

        convert(default_model_path(), sys.argv[2], "float16")
    else:
        convert(sys.argv[2], sys.argv[3], "float32")


if __name__ == "__main__":
    main()
