"""Checks of the constructor arguments every optimizer shares, with Keras's messages."""

from __future__ import annotations

import warnings

import numpy as np


def as_float32(value, name: str, owner: str) -> float:
    """A hyperparameter as Keras holds it in a float32 variable, returned as a Python float."""
    try:
        return float(np.float32(float(value)))
    except (TypeError, ValueError):
        raise ValueError(
            f"{owner}: argument `{name}` should be a float, a LearningRateSchedule or a "
            f"callable returning the value. Received: {name}={value!r}"
        ) from None


def check_base_arguments(
    owner: str,
    kwargs: dict,
    *,
    clipnorm,
    clipvalue,
    global_clipnorm,
    use_ema,
    ema_momentum,
    ema_overwrite_frequency,
    gradient_accumulation_steps,
) -> None:
    """Raises on unknown keyword arguments (TypeError) and on invalid base settings."""
    if kwargs.pop("decay", None) is not None:
        # stacklevel 4: the user's call, above the subclass and base constructors.
        warnings.warn("Argument `decay` is no longer supported and will be ignored.", stacklevel=4)
    if kwargs:
        hint = " (use `learning_rate`)" if "lr" in kwargs else ""
        raise TypeError(f"{owner} got unexpected argument(s): {sorted(kwargs)}{hint}.")
    if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
        raise ValueError(
            "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
            f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
            f"global_clipnorm={global_clipnorm}"
        )
    if gradient_accumulation_steps and not (
        isinstance(gradient_accumulation_steps, int) and gradient_accumulation_steps >= 2
    ):
        raise ValueError(
            "`gradient_accumulation_steps` must be an integer >= 2. "
            f"Received: gradient_accumulation_steps={gradient_accumulation_steps}"
        )
    if use_ema:
        if not 0 <= ema_momentum <= 1:
            raise ValueError(
                f"`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={ema_momentum}"
            )
        if ema_overwrite_frequency and (
            not isinstance(ema_overwrite_frequency, int) or ema_overwrite_frequency < 1
        ):
            raise ValueError(
                "`ema_overwrite_frequency` must be an integer >= 1 or None. "
                f"Received: ema_overwrite_frequency={ema_overwrite_frequency}"
            )
