"""Per-sample random draws during a training step: the same numbers whichever worker holds a
sample.

While fit runs a training step, ``SAMPLES`` says which rows of the global batch this worker
holds (``offset``, ``local``, ``global_size``) and the step number. A draw whose first dimension
is the batch is then made for the whole global batch from a generator seeded by a hash of
(stream key, call number in this step, step) only, and this worker keeps its rows. So a
sample's dropout mask or noise is a pure function of (seed, layer, step, global sample index):
1 worker and N workers train the same model, and a resumed run (on any number of workers)
draws what the uninterrupted one drew, with no generator state to back up.

Drawing the whole global batch costs each worker ``world_size`` times the random numbers of its
own rows: next to the matmuls that consume them this is small, and it keeps torch's fast
fused generators (one reseed, on the host, per draw; no device read).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

_MASK64 = (1 << 64) - 1


def _splitmix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def mix(*values: int) -> int:
    """A 64-bit hash of integers (host-side, a few Python operations)."""
    h = 0
    for value in values:
        h = _splitmix64(h ^ (value & _MASK64))
    return h


class _SampleContext:
    """Which global rows this worker holds in the training step in progress."""

    def __init__(self):
        self.active = False
        self.offset = 0  # global index (within the batch) of this worker's first row
        self.local = 0  # rows this worker holds
        self.global_size = 0  # rows in the global batch
        self.step = 0  # the model's training step number (restored by BackupAndRestore)
        self.global_key = 0  # the stream of unseeded calls (seed=None)
        self.calls: dict[int, int] = {}  # id(stream) -> draws made from it in this step

    def begin(self, offset: int, local: int, global_size: int, step: int, global_key: int) -> None:
        self.offset, self.local, self.global_size = offset, local, global_size
        self.step, self.global_key = step, global_key
        self.calls.clear()
        self.active = True

    def end(self) -> None:
        self.active = False

    def seed_for(self, stream, stream_key: int) -> int:
        """The seed of the next draw of ``stream`` in this step (counts its calls)."""
        ident = id(stream)
        call = self.calls.get(ident, 0)
        self.calls[ident] = call + 1
        return mix(stream_key, call, self.step)


SAMPLES = _SampleContext()


def eager_under_compile(fn: Callable) -> Callable:
    """Runs ``fn`` eagerly when torch.compile traces its caller (``jit_compile=True``).

    A draw reseeds a generator with a new integer each call: traced, every seed would be a
    guard and recompile the graph. torch._dynamo is imported only once compiling, so
    ``import distkeras`` still does not load it.
    """
    disabled = []

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if torch.compiler.is_compiling():
            if not disabled:
                from torch._dynamo import disable

                disabled.append(disable(fn))
            return disabled[0](*args, **kwargs)
        return fn(*args, **kwargs)

    return wrapper


_GENERATORS: dict[torch.device, torch.Generator] = {}


def generator(device: torch.device, seed: int) -> torch.Generator:
    """A cached generator for ``device``, reseeded: the same state as a new one."""
    gen = _GENERATORS.get(device)
    if gen is None:
        gen = _GENERATORS[device] = torch.Generator(device=device)
    # CPU generators keep 32 bits of the seed: fold the 64-bit hash so no half is lost.
    gen.manual_seed((seed ^ (seed >> 32)) & 0xFFFFFFFF if device.type == "cpu" else seed)
    return gen


_CALL_CONTEXT = []  # distkeras.layers.base.CALL_CONTEXT, found at the first training draw


def in_training_step() -> bool:
    """True inside a fit training step: in a layer call made with ``training=True``, or in
    the body of a model's own ``train_step`` (outside any layer call), e.g. a GAN drawing
    its latent vectors. Inference calls inside the step (``training=False``) draw plainly.
    """
    if not SAMPLES.active:
        return False
    if not _CALL_CONTEXT:
        from distkeras.layers.base import CALL_CONTEXT  # (layers import this module)

        _CALL_CONTEXT.append(CALL_CONTEXT)
    context = _CALL_CONTEXT[0]
    return bool(context.training) or context.depth == 0


def per_sample_draw(
    stream,
    stream_key: int,
    shape: tuple,
    device: torch.device,
    fill: Callable[[torch.Generator, tuple], torch.Tensor],
    batch_aligned: bool | None = None,
) -> torch.Tensor:
    """``fill(generator, shape)`` drawn for the global batch; this worker's rows of it.

    ``batch_aligned`` says whether dimension 0 is the batch; None decides by size (dimension 0
    equal to the rows this worker holds).
    """
    gen = generator(device, SAMPLES.seed_for(stream, stream_key))
    return own_rows(fill, gen, tuple(int(d) for d in shape), batch_aligned)


def own_rows(fill, gen: torch.Generator, shape: tuple, batch_aligned: bool | None = None):
    """``fill(gen, shape)``, drawn for the whole global batch when dimension 0 holds this
    worker's rows of it, and sliced to those rows."""
    ctx = SAMPLES
    # A draw is batch-aligned only when it has this worker's rows (a layer called on other
    # data inside the step, e.g. a sub-batch, draws as given).
    aligned = len(shape) > 0 and shape[0] == ctx.local and batch_aligned is not False
    if not aligned or ctx.local == ctx.global_size:
        return fill(gen, shape)
    full = fill(gen, (ctx.global_size, *shape[1:]))
    return full[ctx.offset : ctx.offset + ctx.local]
