"""``Callback`` and ``CallbackList``: Keras's hook API, cheap on the per-step path.

Batch hooks of callbacks that do not override them are never called, and per-batch ``logs``
are lazy: metric values (a host sync on GPU) are read only when a callback looks at them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

_BATCH_HOOKS = (
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class Callback:
    """Base class: override any of the ``on_*`` hooks.

    ``self.model`` is the model being trained; ``self.params`` holds ``verbose``, ``epochs``
    and ``steps``. In distributed training every rank runs every callback; callbacks with
    side effects (files, printing) act on rank 0 only, and epoch logs are global metrics, so
    decisions agree on all ranks.

    Example:
        >>> class PrintLoss(distkeras.callbacks.Callback):
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         print(epoch, logs["loss"])
    """

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None):
        # Keras's aliases: code written for ``on_batch_*`` runs on every training batch.
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...

    def get_config(self) -> dict:
        return {}

    def _listens_to(self, hook: str) -> bool:
        """Whether ``CallbackList`` must call batch hook ``hook`` on this callback.

        By default, when the hook (or its ``on_batch_*`` alias) is overridden on the class or
        set on the instance; a callback whose batch work depends on its arguments overrides
        this to keep the per-step path free.
        """
        return _overrides(self, hook)


class LazyLogs(Mapping):
    """A read-only mapping whose values are computed on first access.

    ``compute`` returns every value at once; ``items`` may give cheaper getters for single
    keys (the loss), so a callback reading only ``logs["loss"]`` pays for that value alone.
    """

    def __init__(self, compute: Callable[[], dict], items: dict[str, Callable] | None = None):
        self._compute = compute
        self._items = items or {}
        self._values: dict | None = None

    def _get(self) -> dict:
        if self._values is None:
            self._values = self._compute()
        return self._values

    def __getitem__(self, key):
        if self._values is None and key in self._items:
            return self._items[key]()
        return self._get()[key]

    def __contains__(self, key) -> bool:
        if self._values is None and key in self._items:
            return True
        return key in self._get()

    def __iter__(self) -> Iterator:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __repr__(self) -> str:
        return repr(self._get())


class CallbackList(Callback):
    """Dispatches hooks to callbacks, skipping batch hooks nobody overrides."""

    def __init__(self, callbacks=None, model=None, **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks must be distkeras.callbacks.Callback instances. "
                    f"Received: {callback!r}"
                )
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)
        self._batch_listeners = {
            hook: [cb for cb in self.callbacks if cb._listens_to(hook)] for hook in _BATCH_HOOKS
        }

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)
        for hook in _BATCH_HOOKS:
            if callback._listens_to(hook):
                self._batch_listeners[hook].append(callback)

    def listens(self, hook: str) -> bool:
        return bool(self._batch_listeners[hook])

    def set_model(self, model):
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def _all(self, hook, *args):
        if args[-1] is None:  # Keras hands callbacks an empty dict, never None
            args = (*args[:-1], {})
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def _batch(self, hook, batch, logs):
        if logs is None:
            logs = {}
        for callback in self._batch_listeners[hook]:
            getattr(callback, hook)(batch, logs)

    def on_train_begin(self, logs=None):
        self._all("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._all("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._all("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._all("on_epoch_end", epoch, logs)

    def on_test_begin(self, logs=None):
        self._all("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._all("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._all("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._all("on_predict_end", logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._batch("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._batch("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._batch("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._batch("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._batch("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._batch("on_predict_batch_end", batch, logs)


_ALIASES = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}


def _overrides(callback: Callback, hook: str) -> bool:
    for name in (hook, _ALIASES.get(hook)):
        if name is None:
            continue
        # An instance attribute counts too: LambdaCallback sets its hooks that way.
        if name in vars(callback) or getattr(type(callback), name) is not getattr(Callback, name):
            return True
    return False
