"""Device and dtype choice, numpy <-> torch conversion, seeding, autograd off per step.

The device is chosen once: ``DISTKERAS_DEVICE`` (e.g. ``cpu``, ``cuda``, ``cuda:1``) or
:func:`set_device` win; otherwise CUDA when available (the process's local rank picks the GPU
when launched distributed), else CPU.
"""

from __future__ import annotations

import functools
import os
import random

import numpy as np
import torch

_FLOATX = "float32"
_EPSILON = 1e-7
_DEVICE: torch.device | None = None

_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}


def floatx() -> str:
    """The default float dtype name, ``"float32"`` unless changed."""
    return _FLOATX


def epsilon() -> float:
    """The fuzz factor numeric expressions use (Keras's ``backend.epsilon()``, 1e-7)."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    global _EPSILON
    _EPSILON = float(value)


def set_floatx(value: str) -> None:
    global _FLOATX
    if value not in ("float16", "bfloat16", "float32", "float64"):
        raise ValueError(f"Unknown floatx: Received: value={value!r}")
    _FLOATX = value


def standardize_dtype(dtype) -> torch.dtype:
    """Maps a dtype name, numpy dtype or torch dtype to a torch dtype."""
    if dtype is None:
        return _DTYPES[_FLOATX]
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name in _DTYPES:
        return _DTYPES[name]
    raise ValueError(f"Unknown dtype. Expected one of {sorted(_DTYPES)}. Received: dtype={dtype!r}")


def dtype_name(dtype: torch.dtype) -> str:
    for name, value in _DTYPES.items():
        if value == dtype:
            return name
    return str(dtype).replace("torch.", "")


def result_type(*dtypes) -> str:
    """Keras's type promotion, as ``keras.backend.result_type`` (weak Python int/float).

    Example:
        >>> distkeras.backend.result_type("int32", "float16")
        'float16'
    """
    from distkeras.ops.dtypes import result_type as promote  # ops.dtypes imports this module

    return promote(*dtypes)


def _default_device() -> torch.device:
    requested = os.environ.get("DISTKERAS_DEVICE")
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        # The launcher's, torchrun's, Open MPI's, MPICH's or SLURM's local rank picks the GPU.
        from distkeras.distributed import env

        local_rank = env.detect().local_rank
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def get_device() -> torch.device:
    """The device new weights and batches go to."""
    global _DEVICE
    if _DEVICE is None:
        _DEVICE = _default_device()
    return _DEVICE


def set_device(device: str | torch.device) -> None:
    """Chooses the device for weights created and data fed from now on.

    Example:
        >>> distkeras.backend.set_device("cpu")
    """
    global _DEVICE
    _DEVICE = torch.device(device)


def convert_to_tensor(x, dtype=None, device=None) -> torch.Tensor:
    """Turns numpy arrays, Python numbers/lists and tensors into a torch tensor on the device.

    Float64 numpy data becomes floatx (Keras does the same), integer data keeps its dtype.
    """
    device = get_device() if device is None else device
    if isinstance(x, torch.Tensor):
        t = x
    else:
        arr = np.asarray(x)
        if arr.dtype == np.float64 and dtype is None:
            arr = arr.astype(_FLOATX)
        if arr.dtype == object:
            raise TypeError(f"Cannot convert an object array to a tensor. Received: {arr!r:.200}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if dtype is not None:
        t = t.to(dtype=standardize_dtype(dtype))
    elif t.dtype == torch.float64:
        t = t.to(standardize_dtype(_FLOATX))
    return t.to(device, non_blocking=True)


def to_numpy(x) -> np.ndarray:
    """Turns a tensor (any device, with or without grad) into a numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def set_random_seed(seed: int) -> None:
    """Seeds Python, numpy and torch (all devices), as ``keras.utils.set_random_seed``."""
    if not isinstance(seed, int):
        raise ValueError(f"Expected an int seed. Received: seed={seed!r}")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    global _SEED
    _SEED = seed
    # As Keras, the global SeedGenerator (unseeded distkeras.random calls) is recreated.
    from distkeras.random.seed_generator import reset_global_seed_generator

    reset_global_seed_generator()


_SEED: int | None = None


def global_seed() -> int | None:
    """The seed last given to :func:`set_random_seed` (None if never called)."""
    return _SEED


# ``torch.no_grad()`` builds a context-manager object per use (about 1.3 us on CPU); the
# per-step path (optimizer update, metric updates, loss tracking) switches the mode directly.
_grad_enabled = torch.is_grad_enabled
_set_grad_enabled = torch._C._set_grad_enabled


def without_grad(fn):
    """Decorator: ``fn`` runs with autograd off, as under ``@torch.no_grad()``."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if not _grad_enabled():
            return fn(*args, **kwargs)
        _set_grad_enabled(False)
        try:
            return fn(*args, **kwargs)
        finally:
            _set_grad_enabled(True)

    return run
