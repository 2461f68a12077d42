"""Where the encoder (and the FL greedy) runs and in which precision, for this process or Spark task.

Precision (:func:`resolve_precision`): ``float32``, or ``bfloat16`` for the transformer's matrix work
(``torch.autocast``: matmuls and attention in bfloat16, layer norms and softmax in float32); pooling,
Dense and normalisation always run in float32 and the vectors are float32. ``auto`` is bfloat16 on CUDA
devices with bf16 support and on CPUs with native bfloat16 (AMX-BF16, AVX512-BF16:
:func:`cpu_has_native_bf16`), else float32.

"""

from __future__ import annotations

from typing import Any

from smart_spark.errors import SmartError

#: ``--precision`` values: ``auto`` resolves per device (:func:`resolve_precision`).
PRECISIONS = ("auto", "float32", "bfloat16")
#: /proc/cpuinfo flags of x86 CPUs whose bfloat16 matrix instructions torch's oneDNN kernels use.
_NATIVE_BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def task_context() -> Any | None:
    """The current Spark ``TaskContext``, ``None`` outside a Spark task or without pyspark."""
    try:
        from pyspark import TaskContext
    except ImportError:
        return None
    return TaskContext.get()


def task_gpu() -> str | None:
    """The address of the GPU Spark assigned to the current task (``spark.task.resource.gpu.amount``),
    ``None`` outside a Spark task or when it was given none."""
    ctx = task_context()
    gpus = ctx.resources().get("gpu") if ctx is not None else None
    return gpus.addresses[0] if gpus is not None and gpus.addresses else None


def resolve_device(device: str = "auto") -> str:
    """``auto`` → ``cuda:<address>`` of the Spark task's assigned GPU, else ``cuda`` when available, else
    ``cpu``; ``cuda`` is the same but an error without CUDA; ``cpu`` and ``cuda:N`` are kept."""
    if device == "cpu":
        return "cpu"
    import torch

    if device not in ("auto", "cuda") and not device.startswith("cuda:"):
        raise SmartError(f"--device {device!r}: expected auto, cpu or cuda")
    if not torch.cuda.is_available():
        if device == "auto":
            return "cpu"
        raise SmartError(f"--device {device}: CUDA is not available on this machine")
    if device.startswith("cuda:"):
        return device
    gpu = task_gpu()
    return f"cuda:{gpu}" if gpu is not None else f"cuda:{torch.cuda.current_device()}"


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bfloat16 matrix instructions that torch uses (x86 ``amx_bf16`` or
    ``avx512_bf16`` in ``/proc/cpuinfo``). ``False`` where the flags cannot be read (non-Linux)."""
    try:
        with open(cpuinfo, encoding="utf8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return not _NATIVE_BF16_CPU_FLAGS.isdisjoint(line.split(":", 1)[-1].split())
    except OSError:
        pass
    return False


def resolve_precision(precision: str = "auto", device: str = "cpu") -> str:
    """``float32`` or ``bfloat16`` for an encoder on the resolved ``device`` (``cpu``, ``cuda[:N]``).

    ``auto`` → ``bfloat16`` on a CUDA device with bf16 support and on a CPU with native bfloat16
    (:func:`cpu_has_native_bf16`), else ``float32``: bfloat16 vectors are batch-invariant (fixed-shape
    passes) and within cosine 0.99995 of float32 on real text. ``bfloat16`` on a CUDA device without bf16
    support is a :class:`SmartError` (on a CPU without native support it works, slowly).
    """
    if precision not in PRECISIONS:
        raise SmartError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    import torch

    on_cuda = device.startswith("cuda")
    native = torch.cuda.is_bf16_supported() if on_cuda else cpu_has_native_bf16()
    if precision == "auto":
        return "bfloat16" if native else "float32"
    if precision == "bfloat16" and on_cuda and not native:
        raise SmartError(f"--precision bfloat16: the CUDA device {device} does not support bfloat16")
    return precision


def set_cpu_threads(cpu_threads: int | None = None) -> int:
    """Set torch's intra-op threads: ``cpu_threads`` when given, else inside a Spark task the task's
    cores (``spark.task.cpus``, normally 1, so Spark's cores are not oversubscribed), else unchanged.
    Returns the thread count in effect."""
    import torch

    if cpu_threads is None:
        ctx = task_context()
        if ctx is not None:
            cpu_threads = max(1, int(ctx.cpus()))
    if cpu_threads is not None and torch.get_num_threads() != cpu_threads:
        torch.set_num_threads(cpu_threads)
    return torch.get_num_threads()
