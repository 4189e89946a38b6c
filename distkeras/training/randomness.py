"""Training-time randomness that does not depend on the worker count.

fit tells ``distkeras.random`` (``random/streams.py``), for each training step, which rows of
the global batch this worker holds and which step it is. Layers' random draws are then keyed
on (stream, step, global sample index) only:

- the stream of a seeded ``SeedGenerator`` (``Dropout(seed=3)``) is its seed, as in Keras;
- the stream of an unseeded one owned by the model is the model's seed (``_shuffle_seed``: the
  ``set_random_seed`` seed, else drawn from Python's ``random``; rank 0's wins) and its place
  in the model, so every worker (and a restarted run) agrees on it;
- the step is the model's count of training steps (``_random_step``, a host int that
  BackupAndRestore saves and restores), so it advances in every step, whichever optimizers a
  custom ``train_step`` uses, and across fit calls.

Nothing here reads the device; per step it is a handful of attribute stores.
"""

from __future__ import annotations

from distkeras.random import streams
from distkeras.random.seed_generator import SeedGenerator

_UNSEEDED_SALT, _GLOBAL_SALT = 0xD5, 0x61


def _model_seed_generators(model) -> list[SeedGenerator]:
    """The model's SeedGenerators, in a fixed order (module order, then attribute name)."""
    found, seen = [], set()
    modules = model.modules() if hasattr(model, "modules") else [model]
    for module in modules:
        for name in sorted(vars(module)):
            value = vars(module)[name]
            if isinstance(value, SeedGenerator) and id(value) not in seen:
                seen.add(id(value))
                found.append(value)
    return found


def random_step(model) -> int:
    """Training steps the model has taken (what a backup saves, to resume the draws)."""
    return int(model.__dict__.get("_random_step", 0))


def set_random_step(model, step: int) -> None:
    model.__dict__["_random_step"] = int(step)


class TrainingRandomness:
    """Per-fit keys and the per-step sample context for one model."""

    def __init__(self, model):
        self.model = model
        self.global_key = 0

    def prepare(self, model_seed: int) -> None:
        """At the start of fit/evaluate/predict: key the model's unseeded generators."""
        for ordinal, generator in enumerate(_model_seed_generators(self.model)):
            if generator._initial_seed is None:
                generator._stream_key = streams.mix(_UNSEEDED_SALT, model_seed, ordinal)
        self.global_key = streams.mix(_GLOBAL_SALT, model_seed)

    def begin(self, batch) -> None:
        """Before a training step on ``batch`` (this worker's rows of a global batch)."""
        step = random_step(self.model) + 1
        # Straight into __dict__: torch.nn.Module.__setattr__ costs a microsecond a step.
        self.model.__dict__["_random_step"] = step
        streams.SAMPLES.begin(
            getattr(batch, "offset", 0), batch.size, batch.global_size, step, self.global_key
        )

    @staticmethod
    def end() -> None:
        streams.SAMPLES.end()
