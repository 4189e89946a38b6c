"""The optimizer base class: Keras 3's optimizer semantics on multi-tensor torch math.

One step, in Keras's order: drop parameters without a gradient; unscale by
``loss_scale_factor``; with ``gradient_accumulation_steps=k`` add to the accumulators and
only every k-th call go on with their mean; clip (``clipnorm`` per tensor, ``global_clipnorm``
over all, or ``clipvalue``); decoupled weight decay ``w -= w * weight_decay * lr``; the
optimizer's own update; the EMA of the weights; ``iterations += 1``.

Speed: parameters are grouped by (device, dtype) once, when the optimizer is built, and every
stage runs as a few ``torch._foreach_*`` calls per group, so a step costs a handful of kernel
launches whatever the number of parameters. The step count, learning rate, schedules and bias
corrections are Python numbers on the host: nothing in a step waits for the device.
"""

from __future__ import annotations

import operator
import re
import warnings
from collections.abc import Iterable

import numpy as np
import torch

from distkeras import backend, initializers
from distkeras.optimizers import schedules
from distkeras.optimizers.arguments import as_float32, check_base_arguments
from distkeras.optimizers.multi_tensor import (
    ParamGroup,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    grads_from_params,
    make_groups,
    match_grads,
)
from distkeras.utils import naming
from distkeras.utils.serialization import serialize_object

Tensor = torch.Tensor


class Optimizer:
    """Base class of every optimizer, with Keras 3's constructor arguments and behaviour.

    Subclasses set their hyperparameters after ``super().__init__``, create their state in
    ``build`` with ``_add_slots`` and implement ``_update_group(params, grads, slots, lr,
    step)`` with ``torch._foreach_*`` ops. A Keras-style subclass that overrides
    ``update_step(gradient, variable, learning_rate)`` instead also works (one call per
    variable).

    Args:
        learning_rate: a float, a ``LearningRateSchedule`` or a callable with no arguments.
        weight_decay: decoupled weight decay: ``w -= w * weight_decay * lr`` before each update.
        clipnorm: clips each gradient to this L2 norm.
        clipvalue: clips each gradient element to ``[-clipvalue, clipvalue]``.
        global_clipnorm: clips all gradients together to this global L2 norm.
        use_ema: keep an exponential moving average of the weights.
        ema_momentum: the EMA's momentum.
        ema_overwrite_frequency: every this many steps, copy the EMA into the weights.
        loss_scale_factor: gradients are divided by it (the loss was multiplied by it).
        gradient_accumulation_steps: apply the mean gradient of this many calls at once.
        name: the optimizer's name.

    Example:

    ```python
    opt = distkeras.optimizers.Adam(learning_rate=1e-3)
    loss = model(x).square().mean()
    loss.backward()
    opt.step(model.trainable_weights)  # reads p.grad, updates in place
    ```
    """

    # Set by fit while a user's train_step runs on several workers: a callable
    # (grads, variables) -> grads that returns the gradients summed over workers.
    gradient_sync = None

    def __init__(
        self,
        learning_rate,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        **kwargs,
    ):
        owner = type(self).__name__
        check_base_arguments(
            owner,
            kwargs,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            gradient_accumulation_steps=gradient_accumulation_steps,
        )
        self.name = name or naming.uniquify(naming.to_snake_case(owner))
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = use_ema
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.built = False

        # Host-side truth: the raw call count (Keras's `_iterations`) and the learning rate.
        # The tensors below mirror them for `variables` (saving, broadcasting).
        self._iteration_count = 0
        self._state_device = torch.device("cpu")
        self._iterations_var = torch.zeros((), dtype=torch.int64)
        self._learning_rate_var: Tensor | None = None
        self._learning_rate = None
        self._trainable_variables: list[Tensor] = []
        self._var_index: dict[int, int] = {}
        self._slots: dict[str, list[Tensor]] = {}
        self._tracked: list[Tensor] = []
        self._scalar_mirrors: list[tuple[str, Tensor]] = []
        self._groups: list[ParamGroup] | None = None
        self._locate: dict[int, tuple[int, int]] = {}
        self._exclude_ids: set[int] = set()
        self._exclude_pattern: re.Pattern | None = None
        self._warned_missing = False
        if isinstance(learning_rate, schedules.LearningRateSchedule) or callable(learning_rate):
            self._learning_rate = learning_rate
        else:
            self.learning_rate = learning_rate

    # ----------------------------------------------------------------------------- state
    @property
    def iterations(self) -> Tensor:
        """Applied steps as a 0-d int64 CPU tensor (update steps when accumulating)."""
        return torch.tensor(self._update_count(), dtype=torch.int64)

    def _update_count(self) -> int:
        k = self.gradient_accumulation_steps
        return self._iteration_count // k if k else self._iteration_count

    @property
    def learning_rate(self) -> float:
        """The current rate: the float, or the schedule's value at the current call count."""
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            return float(lr(self._iteration_count))
        if callable(lr):
            return float(lr())
        return lr

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if isinstance(value, schedules.LearningRateSchedule) or callable(value):
            self._learning_rate = value
            self._learning_rate_var = None
            return
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not settable. "
                "If you need the learning rate to be settable, you should instantiate the "
                "optimizer with a float `learning_rate` argument."
            )
        self._learning_rate = as_float32(value, "learning_rate", type(self).__name__)
        if self._learning_rate_var is None:
            self._learning_rate_var = torch.zeros(
                (), dtype=torch.float32, device=self._state_device
            )

    @property
    def variables(self) -> list[Tensor]:
        """Every state tensor in Keras's order: iteration, learning_rate (unless scheduled),
        then the per-variable slots as each optimizer's ``build`` creates them."""
        self._iterations_var.fill_(self._iteration_count)
        out = [self._iterations_var]
        if self._learning_rate_var is not None:
            self._learning_rate_var.fill_(self._learning_rate)
            out.append(self._learning_rate_var)
        for attr, tensor in self._scalar_mirrors:
            tensor.fill_(getattr(self, attr))
        return out + self._tracked

    def set_variables(self, values: Iterable) -> None:
        """Restores ``variables`` from tensors or arrays (a checkpoint, rank 0's broadcast)."""
        current = self.variables
        values = list(values)
        if len(values) != len(current):
            hint = "" if self.built else " Build it first: optimizer.build(trainable_variables)."
            raise ValueError(
                f"Optimizer '{self.name}' has {len(current)} variables but received "
                f"{len(values)} values.{hint}"
            )
        with torch.no_grad():
            for i, (var, value) in enumerate(zip(current, values)):
                if not isinstance(value, Tensor):
                    value = torch.as_tensor(np.asarray(value))
                if tuple(value.shape) != tuple(var.shape):
                    raise ValueError(
                        f"Optimizer '{self.name}' variable {i} has shape {tuple(var.shape)}, "
                        f"not compatible with the provided shape {tuple(value.shape)}."
                    )
                if value is not var:
                    var.copy_(value)
        self._sync_host_state()

    def _sync_host_state(self) -> None:
        """Re-reads the host-side step count, learning rate and scalars from ``variables``
        after they were written in place (e.g. broadcast from rank 0). A host sync: only on
        restore, never in a step."""
        self._iteration_count = int(self._iterations_var)
        if self._learning_rate_var is not None:
            self._learning_rate = float(self._learning_rate_var)
        for attr, tensor in self._scalar_mirrors:
            setattr(self, attr, float(tensor))

    set_weights = set_variables

    def save_own_variables(self, store) -> None:
        """Writes ``variables`` as ``store["0"], store["1"], ...`` numpy arrays (Keras's format)."""
        for i, var in enumerate(self.variables):
            store[str(i)] = backend.to_numpy(var)

    def load_own_variables(self, store) -> None:
        """Reads what ``save_own_variables`` wrote; a count mismatch warns and loads nothing."""
        n = len(self.variables)
        if len(store.keys()) != n:
            msg = (
                f"Skipping variable loading for optimizer '{self.name}', because it has {n} "
                f"variables whereas the saved optimizer has {len(store.keys())} variables."
            )
            if not self.built:
                msg += " This is likely because the optimizer has not been called/built yet."
            warnings.warn(msg, stacklevel=2)
            return
        self.set_variables([store[str(i)] for i in range(n)])

    # ----------------------------------------------------------------------------- build
    def build(self, variables: Iterable[Tensor]) -> None:
        """Creates the state for ``variables`` (zeros like each, on its device). Idempotent."""
        if self.built:
            return
        variables = list(variables)
        for v in variables:
            if not isinstance(v, Tensor):
                raise TypeError(
                    f"Optimizer '{self.name}' can only be built on torch tensors/Parameters. "
                    f"Received: {type(v).__name__}"
                )
        self._trainable_variables = variables
        self._var_index = {id(v): i for i, v in enumerate(variables)}
        if len(self._var_index) != len(variables):
            raise ValueError(f"Optimizer '{self.name}' received the same variable twice in build.")
        self._state_device = variables[0].device if variables else backend.get_device()
        self._iterations_var = self._iterations_var.to(self._state_device)
        if self._learning_rate_var is not None:
            self._learning_rate_var = self._learning_rate_var.to(self._state_device)
        self.built = True
        if self.use_ema:
            self._add_slots(["average"])
        if self.gradient_accumulation_steps:
            self._add_slots(["gradient_accumulator"])

    def _add_slots(self, names: list[str], initial_value: float = 0.0) -> None:
        """One state tensor per variable and name, interleaved per variable as Keras adds them."""
        created = {name: [] for name in names}
        for v in self._trainable_variables:
            for name in names:
                t = torch.full_like(v, initial_value) if initial_value else torch.zeros_like(v)
                created[name].append(t)
                self._tracked.append(t)
        self._slots.update(created)
        self._groups = None

    def _add_scalar_state(self, attr: str, dtype: torch.dtype) -> None:
        """Tracks the host float ``self.<attr>`` as a 0-d tensor at this point of ``variables``."""
        tensor = torch.zeros((), dtype=dtype, device=self._state_device)
        self._scalar_mirrors.append((attr, tensor))
        self._tracked.append(tensor)

    def add_variable(self, shape, initializer="zeros", dtype=None, aggregation="mean", name=None):
        """Keras API for custom optimizers: a new state tensor, tracked in ``variables``."""
        value = initializers.get(initializer)(tuple(shape), dtype=dtype)
        tensor = torch.as_tensor(value, dtype=backend.standardize_dtype(dtype))
        tensor = tensor.to(self._state_device)
        self._tracked.append(tensor)
        return tensor

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        """Keras API for custom optimizers: a state tensor shaped like ``reference_variable``."""
        if initializer == "zeros":
            tensor = torch.zeros_like(reference_variable)
        else:
            value = initializers.get(initializer)(
                tuple(reference_variable.shape), dtype=reference_variable.dtype
            )
            tensor = torch.as_tensor(value).to(reference_variable)
        self._tracked.append(tensor)
        return tensor

    def _get_variable_index(self, variable) -> int:
        return self._var_index[id(variable)]

    def assign(self, variable: Tensor, value) -> None:
        with torch.no_grad():
            variable.copy_(value)

    def assign_add(self, variable: Tensor, value) -> None:
        with torch.no_grad():
            variable.add_(value)

    def assign_sub(self, variable: Tensor, value) -> None:
        with torch.no_grad():
            variable.sub_(value)

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Exempts variables from weight decay, by identity or by a substring of their name
        (the ``path`` or ``name`` attribute of a parameter, when it has one)."""
        self._exclude_ids = {id(v) for v in var_list or ()}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None
        self._groups = None

    def _use_weight_decay(self, variable) -> bool:
        if id(variable) in self._exclude_ids:
            return False
        if self._exclude_pattern is not None:
            label = getattr(variable, "path", None) or getattr(variable, "name", None)
            if label and self._exclude_pattern.search(str(label)):
                return False
        return True

    def _make_groups(self) -> list[ParamGroup]:
        self._groups, self._locate = make_groups(
            self._trainable_variables, self._slots, self._use_weight_decay
        )
        return self._groups

    # ----------------------------------------------------------------------------- apply
    def step(self, params: Iterable[Tensor] | None = None) -> None:
        """The trainer's fast path: updates the built parameters in place from their ``.grad``.

        Builds on ``params`` the first time; afterwards ``params`` is ignored (the optimizer
        updates the parameters it was built with). Parameters whose ``grad`` is None are left
        alone, their state untouched; if none has a gradient this is a no-op.
        """
        if not self.built:
            if params is None:
                raise ValueError(
                    f"Optimizer '{self.name}' is not built: pass the parameters to the first "
                    "step(params) or call optimizer.build(trainable_variables)."
                )
            self.build(params)
        groups = self._groups if self._groups is not None else self._make_groups()
        work = grads_from_params(groups)
        if work:
            self._apply_work(work)

    def apply(self, grads, trainable_variables=None) -> None:
        """Keras's ``apply``: ``grads`` match ``trainable_variables`` (or the built ones)."""
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be "
                    "built on a list of variables. Call `optimizer.build(trainable_variables)` "
                    "first."
                )
            variables = self._trainable_variables
        else:
            variables = list(trainable_variables)
            if not self.built:
                self.build(variables)
        if len(grads) != len(variables):
            raise ValueError(
                f"Optimizer '{self.name}' received {len(grads)} gradients for "
                f"{len(variables)} variables."
            )
        if Optimizer.gradient_sync is not None:
            # A user's train_step under several workers: all-reduce before reading them.
            grads = Optimizer.gradient_sync(grads, variables)
        groups = self._groups if self._groups is not None else self._make_groups()
        own = self._own_grads_work(grads, variables, groups)
        if own is not None:
            # A train_step passing each built variable's .grad (Keras's guide): step()'s path.
            work, missing = own
        else:
            work, missing = match_grads(groups, self._locate, grads, variables)
        if not work:
            raise ValueError("No gradients provided for any variable.")
        if missing and not self._warned_missing:
            self._warned_missing = True
            warnings.warn(
                f"Gradients do not exist for {missing} variable(s) when minimizing the loss; "
                "they are left unchanged.",
                stacklevel=2,
            )
        self._apply_work(work)

    def _own_grads_work(self, grads: list, variables: list, groups: list) -> tuple | None:
        """``(step()'s work, variables without a gradient)`` if ``grads`` are exactly
        ``v.grad`` of the built variables in the built order (Keras's guide-style
        train_step), else None.

        Identity tests run as ``all(map(operator.is_, ...))`` (C loops, no per-parameter
        Python bytecode, never ``Tensor.__eq__``). Once both hold, step()'s work reads the same
        ``.grad`` tensors, whatever order the groups keep the variables in.
        """
        built = self._trainable_variables
        if variables is not built and (
            len(variables) != len(built) or not all(map(operator.is_, variables, built))
        ):
            return None
        if not all(map(operator.is_, grads, map(_GRAD, variables))):
            return None
        work = grads_from_params(groups)
        return work, len(grads) - sum(len(g) for _, g in work)

    def apply_gradients(self, grads_and_vars) -> Tensor:
        """Keras's ``apply_gradients([(grad, var), ...])``; returns ``iterations``."""
        grads, variables = zip(*grads_and_vars)
        self.apply(list(grads), list(variables))
        return self.iterations

    def scale_loss(self, loss):
        """Multiplies the loss by ``loss_scale_factor`` (gradients are divided back)."""
        return loss * self.loss_scale_factor if self.loss_scale_factor is not None else loss

    @backend.without_grad
    def _apply_work(self, work: list[tuple[ParamGroup, list[Tensor]]]) -> None:
        if self.loss_scale_factor is not None:
            work = [(g, torch._foreach_div(grads, self.loss_scale_factor)) for g, grads in work]
        k = self.gradient_accumulation_steps
        if not k:
            self._update(work)
        elif (self._iteration_count + 1) % k:
            for group, grads in work:
                torch._foreach_add_(group.slots["gradient_accumulator"], grads)
        else:
            averaged = []
            for group, grads in work:
                total = torch._foreach_add(group.slots["gradient_accumulator"], grads)
                torch._foreach_div_(total, float(k))
                averaged.append((group, total))
            self._update(averaged)
            for group in self._groups:
                torch._foreach_zero_(group.slots["gradient_accumulator"])
        if self.use_ema:
            self._update_ema()
        self._iteration_count += 1

    def _update(self, work: list[tuple[ParamGroup, list[Tensor]]]) -> None:
        grads = self._clip_gradients(work)
        lr = self.learning_rate
        if self.weight_decay is not None:
            factor = 1.0 - float(self.weight_decay) * lr
            for group, _ in work:
                if group.decay:
                    torch._foreach_mul_(group.decay, factor)
        step = self._update_count() + 1
        self._prepare_step(step)
        for (group, _), g in zip(work, grads):
            self._update_group(group.params, g, group.slots, lr, step)

    def _clip_gradients(self, work) -> list[list[Tensor]]:
        grads = [g for _, g in work]
        if self.clipnorm and self.clipnorm > 0:
            return [clip_by_norm(g, float(self.clipnorm)) for g in grads]
        if self.global_clipnorm and self.global_clipnorm > 0:
            return clip_by_global_norm(work, float(self.global_clipnorm))
        if self.clipvalue and self.clipvalue > 0:
            return [clip_by_value(g, float(self.clipvalue)) for g in grads]
        return grads

    def _update_ema(self) -> None:
        count = self._update_count()
        weight = 1.0 - (self.ema_momentum if count != 0 else 0.0)
        for group in self._groups:
            torch._foreach_lerp_(group.slots["average"], group.params, weight)
        freq = self.ema_overwrite_frequency
        if freq and (count + 1) % freq == 0:
            for group in self._groups:
                torch._foreach_copy_(group.params, group.slots["average"])

    def finalize_variable_values(self, var_list) -> None:
        """With ``use_ema``, overwrites the variables with their moving averages."""
        if self.use_ema and self.built:
            with torch.no_grad():
                for v in var_list:
                    v.copy_(self._slots["average"][self._get_variable_index(v)])

    # ----------------------------------------------------------------------------- hooks
    def _prepare_step(self, step: int) -> None:
        """Called once per update before the groups, with the 1-based update number."""

    def _update_group(self, params, grads, slots, lr: float, step: int) -> None:
        """Updates one (device, dtype) group in place; the default calls ``update_step``."""
        for g, p in zip(grads, params):
            self.update_step(g, p, lr)

    def update_step(self, gradient, variable, learning_rate) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `_update_group` (multi-tensor) or "
            "`update_step(gradient, variable, learning_rate)`."
        )

    # ----------------------------------------------------------------------------- config
    def get_config(self) -> dict:
        lr = self._learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif callable(lr):
            lr = serialize_object(lr)
        return {
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(
                config["learning_rate"], custom_objects=custom_objects
            )
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


_GRAD = operator.attrgetter("grad")
