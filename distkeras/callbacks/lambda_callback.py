"""``LambdaCallback``: a callback made of plain functions."""

from __future__ import annotations

from collections.abc import Callable

from distkeras.callbacks.base import Callback

_HOOKS = frozenset(
    name for name in vars(Callback) if name.startswith("on_") and callable(vars(Callback)[name])
)


class LambdaCallback(Callback):
    """Builds a callback from functions, as Keras's.

    Epoch hooks take ``(epoch, logs)``, train begin/end take ``(logs)``, batch hooks take
    ``(batch, logs)``. Any other hook of ``Callback`` (``on_test_end``, ``on_batch_end``, ...)
    can be given as a keyword argument. Batch functions make ``fit`` call them every step;
    reading ``logs`` there costs a device sync.

    Example:
        >>> print_loss = distkeras.callbacks.LambdaCallback(
        ...     on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))
        >>> model.fit(x, y, epochs=3, callbacks=[print_loss])
    """

    def __init__(
        self,
        on_epoch_begin: Callable | None = None,
        on_epoch_end: Callable | None = None,
        on_train_begin: Callable | None = None,
        on_train_end: Callable | None = None,
        on_train_batch_begin: Callable | None = None,
        on_train_batch_end: Callable | None = None,
        **kwargs,
    ):
        super().__init__()
        unknown = sorted(set(kwargs) - _HOOKS)
        if unknown:
            raise TypeError(
                f"LambdaCallback got unexpected argument(s): {unknown}. Expected hook names "
                f"such as {sorted(_HOOKS)[:4]}..."
            )
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
            **kwargs,
        }
        for name, function in hooks.items():
            if function is None:
                continue
            if not callable(function):
                raise TypeError(
                    f"LambdaCallback: `{name}` must be callable. Received: {name}={function!r}"
                )
            # An instance attribute shadows the hook; CallbackList sees it as an override.
            setattr(self, name, function)
