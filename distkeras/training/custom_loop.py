"""fit/evaluate through a model's own ``train_step``/``test_step`` (Keras's per-batch calls).

:class:`CustomStepRunner` offers the per-batch interface of ``StepContext`` (``train_step``,
``test_step``, ``reset_metrics``, ``epoch_logs``, ...), so the epoch loops in ``trainer.py``
drive either one. It is chosen when a model overrides a step method, tracks its own metrics,
or compiles without a loss (``steps.custom_step_reason``).

Under several workers a user's step still trains the global-batch model:

- before the first step rank 0's weights are broadcast, as for the built-in step;
- the gradient reducer watches the user's ``backward()``: each bucket is weighted by this
  worker's share of the global batch and all-reduced as autograd fills it;
- ``optimizer.apply(gradients, variables)`` (and ``apply_gradients``) waits for the sums and
  reads them in place of the local gradients the user collected (``Optimizer.gradient_sync``);
  gradients that are not a variable's ``.grad`` are all-reduced right there;
- at the end of each epoch the state of every metric in ``model.metrics`` is summed over
  workers, so the logged metrics are global. A scalar ``Mean`` update (``tracker.update_state
  (loss)``, once per step) counts as this worker's share of the global batch, so the summed
  loss is the global batch's mean even when the workers' parts are unequal;
- a preemption signal to any rank stops every rank after the same step: the vote rides in the
  gradient all-reduce, as in the built-in step.
"""

from __future__ import annotations

import warnings

import torch

from distkeras.callbacks.base import LazyLogs
from distkeras.layers.base import Layer
from distkeras.metrics.reduction import Mean
from distkeras.optimizers.base import Optimizer
from distkeras.training import preemption
from distkeras.training import steps as steps_module


class CustomStepRunner:
    """Runs ``model.train_step``/``model.test_step`` for the loops of ``trainer.py``."""

    def __init__(self, model, base):
        self.model = model
        self.base = base  # the StepContext: data, rank, world size, device
        self.logs: dict = {}
        self.synced = False
        self.reducer = None
        self._pending_resume = None
        self._last_share = 1.0
        self._step_votes = None  # the ranks' summed stop vote from the last step's gradients
        self._votes = preemption.VoteReader()

    @property
    def rng(self):
        return self.base.rng

    def make_data(self, *args, **kwargs):
        return self.base.make_data(*args, **kwargs)

    @property
    def rank(self) -> int:
        return self.base.rank

    @property
    def world_size(self) -> int:
        return self.base.world_size

    # ------------------------------------------------------------------------ set-up
    def _ensure_ready(self, batch, training: bool) -> None:
        model, base = self.model, self.base
        if base.grad_scaler is not None and training:
            raise NotImplementedError(
                f"Model '{model.name}': mixed_float16 loss scaling with a custom train_step "
                "(or compile() without a loss) is not supported; use mixed_bfloat16 or float32."
            )
        if not self.synced:
            if not model.built and type(model).call is not Layer.call:
                # Build the weights outside autograd so they can be synchronised first.
                with torch.no_grad(), base._autocast():
                    model(batch.x, training=False)
            if self.world_size > 1:
                from distkeras.distributed import sync

                sync.check_and_broadcast(model, base.comm)
                model._weights_synced = True
            self.synced = True
        if training and self.world_size > 1 and self.reducer is None:
            from distkeras.distributed import sync

            params = model.trainable_weights
            self.reducer = sync.make_reducer(params, base.comm) if params else None
            self._param_count = len(params)

    # ------------------------------------------------------------------------- steps
    def train_step(self, batch, vote: bool = False) -> None:
        self._ensure_ready(batch, training=True)
        if "_step_cache" not in self.model.__dict__:
            self.model._step_cache = steps_module.StepCache(self.model)
        data = steps_module.pack_x_y_sample_weight(batch.x, batch.y, batch.sample_weight)
        share = self._share(batch)
        sync = self._step_votes = None
        if self.reducer is not None:
            if len(self.model.trainable_weights) != self._param_count:
                raise RuntimeError(
                    f"Model '{self.model.name}' created weights inside train_step. Under "
                    "several workers build every weight before fit (give the model an Input "
                    "or call it)."
                )
            sync = _GradientSync(self.reducer, share, self.base.comm, vote)
            sync.start()
            Optimizer.gradient_sync = sync
        Mean.scalar_share = share
        try:
            self.logs = self.model.train_step(data)
        finally:
            Optimizer.gradient_sync = None
            Mean.scalar_share = 1.0
        if sync is not None:
            sync.end(self.model.name)
            self._step_votes = sync.votes
        if self._pending_resume is not None:
            self._restore_metrics(after_step=True)

    def test_step(self, batch) -> None:
        self._ensure_ready(batch, training=False)
        data = steps_module.pack_x_y_sample_weight(batch.x, batch.y, batch.sample_weight)
        Mean.scalar_share = self._share(batch)
        try:
            self.logs = self.model.test_step(data)
        finally:
            Mean.scalar_share = 1.0

    def _share(self, batch) -> float:
        """This worker's part of the global batch (what its batch-level values weigh)."""
        share = 1.0
        if self.world_size > 1:
            global_size = getattr(batch, "global_size", 0) or batch.size
            share = batch.size / global_size
        self._last_share = share
        return share

    def stop_agreed(self, local_vote: bool) -> bool:
        """True on every rank once any rank was asked to stop (preemption), after the same step.

        The vote rode along with the step's gradient all-reduce; a step that reduced no
        gradients (no backward, no trainable weights) votes in a collective of its own.
        """
        if self.world_size == 1:
            return local_vote
        votes = self._step_votes
        if votes is None:
            from distkeras.distributed import sync

            votes = torch.tensor(float(local_vote), device=self.base.device)
            sync.all_reduce_sum([votes], self.base.comm)
        return self._votes.agreed(votes)

    # ------------------------------------------------------------------------- state
    def reset_metrics(self, resume_state: dict | None = None) -> None:
        self.logs = {}
        self.model.reset_metrics()
        self._pending_resume = None
        if resume_state is not None:
            self._pending_resume = list(resume_state["metrics"])
            self._restore_metrics(after_step=False)

    def _restore_metrics(self, after_step: bool) -> None:
        """Puts a backup's metric sums back once the metrics exist.

        Compiled metrics create their states at their first update (from the shapes), so a
        resumed epoch's sums often cannot be restored before its first step: they are then
        added after it (the states were zero before the step, and every state is a sum).
        """
        saved, states = self._pending_resume, self._metric_states()
        if len(states) != len(saved):
            if not after_step:
                return  # not all metrics exist yet: after the first step
            raise RuntimeError(
                f"Model '{self.model.name}': the backup holds {len(saved)} metric states, the "
                f"model's metrics have {len(states)} after a step; the resumed epoch's metrics "
                "cannot be restored (were metrics added or removed since the backup?)."
            )
        self._pending_resume = None
        if self.rank != 0:
            return  # the saved sums are global: one rank holds them, the others add to zero
        with torch.no_grad():
            for variable, value in zip(states, saved):
                value = value.to(device=variable.device, dtype=variable.dtype)
                variable.add_(value) if after_step else variable.copy_(value)

    def _metric_states(self) -> list[torch.Tensor]:
        return [v for m in self.model.metrics for v in m.variables]

    def _all_reduce_metrics(self) -> None:
        if self.world_size > 1:
            from distkeras.distributed import sync

            sync.all_reduce_sum(self._metric_states(), self.base.comm)

    def epoch_state(self) -> dict:
        """The epoch's global metric sums so far (collective: all ranks call it).

        Reduces copies: training may go on after it (a periodic backup), adding to the running
        sums that epoch_logs reduces at the end of the epoch.
        """
        states = [v.detach().clone() for v in self._metric_states()]
        if self.world_size > 1 and states:
            from distkeras.distributed import sync

            sync.all_reduce_sum(states, self.base.comm)
        return {
            "loss_total": torch.zeros(()),
            "output_loss_totals": None,
            "samples_seen": 0,
            "metrics": [t.cpu() for t in states],
        }

    def average_non_trainable(self) -> None:
        if self.world_size == 1 or not self.synced:
            return
        frozen = [
            spec.param
            for spec in self.model._weight_spec_list()
            if not spec.trainable and spec.param.is_floating_point()
        ]
        if frozen:
            from distkeras.distributed import sync

            sync.all_reduce_sum(frozen, self.base.comm)
            with torch.no_grad():
                torch._foreach_mul_(frozen, 1.0 / self.world_size)

    # -------------------------------------------------------------------------- logs
    def epoch_logs(self) -> dict:
        """Global metrics (Keras's ``_get_metrics_result_or_logs`` on summed states)."""
        # Weight lists are cached for an epoch's steps at most (train_on_batch ends here too).
        self.model.__dict__.pop("_step_cache", None)
        self._all_reduce_metrics()
        metric_logs = steps_module.pythonify_logs(self.model.get_metrics_result())
        last = steps_module.pythonify_logs(self.logs) if isinstance(self.logs, dict) else {}
        # Keras compares the step's keys with the metrics' (then takes the metrics, which on
        # one process hold the same values); compared flattened, a step returning
        # {"compile_metrics": {...}} also reads the global sums.
        if set(last) == set(metric_logs):
            return metric_logs
        if last and self.world_size > 1:
            share = self._last_share
            last = _weighted_over_ranks(last, share, self.base.comm, self.base.device)
        return last

    def lazy_logs(self) -> LazyLogs:
        """The last step's logs as it returned them, read only if a callback asks."""
        logs = self.logs
        return LazyLogs(lambda: steps_module.pythonify_logs(logs))

    def end_fit(self) -> None:
        self.model.__dict__.pop("_step_cache", None)
        if self.reducer is not None:
            self.reducer.close()
            self.reducer = None
        self.synced = False
        self._votes = preemption.VoteReader()  # a vote in flight belongs to its fit only
        self.base.end_fit()


class _GradientSync:
    """``Optimizer.gradient_sync`` for one user step: reduced gradients for ``apply``."""

    def __init__(self, reducer, share: float, comm, vote: bool = False):
        self.reducer, self.share, self.comm = reducer, share, comm
        self.vote = 1.0 if vote else 0.0  # rides in the reducer's control slot
        self.votes = None  # the sum over ranks, once a round of gradients is reduced
        self.applied = False

    def start(self) -> None:
        self.reducer.prepare(vote=self.vote, grad_scale=self.share)

    def __call__(self, grads: list, variables: list) -> list:
        reducer = self.reducer
        local = [getattr(v, "grad", None) for v in variables]
        if reducer.active:
            reducer.finish()
            self.votes = reducer.votes().clone()  # the next prepare() overwrites the slot
            reducer.prepare(vote=self.vote, grad_scale=self.share)  # a second backward (a GAN)
        self.applied = True
        out, foreign = [], []
        for index, (grad, variable, before) in enumerate(zip(grads, variables, local)):
            if variable in reducer.bucket_of and (grad is None or grad is before):
                out.append(variable.grad)  # the reduced sum (None if no rank produced one)
            elif grad is None:
                out.append(None)
            else:
                out.append(grad * self.share)
                foreign.append(index)
        if foreign:
            from distkeras.distributed import sync

            sync.all_reduce_sum([out[i] for i in foreign], self.comm)
        return out

    def end(self, model_name: str) -> None:
        reducer = self.reducer
        if not reducer.active:
            return
        if reducer.has_gradients():
            reducer.finish()  # keep the ranks' collectives matched, then say why
            raise RuntimeError(
                f"Model '{model_name}': train_step ran backward() but applied the gradients "
                "without self.optimizer.apply()/apply_gradients(). Under several workers "
                "distkeras all-reduces gradients there; other optimizers would step on "
                "this worker's gradients alone."
            )
        reducer.cancel()


def runner_for(model, step):
    """The runner for ``model``'s fit/evaluate: its own steps, or the fused ``step``."""
    reason = steps_module.custom_step_reason(model)
    if reason is None:
        return step
    runner = getattr(step, "_custom_runner", None)
    if runner is None:
        if getattr(model, "jit_compile", False):
            warnings.warn(
                f"Model '{model.name}': jit_compile=True applies to the built-in step; the "
                f"model's own steps ({reason}) run eagerly.",
                stacklevel=3,
            )
        runner = step._custom_runner = CustomStepRunner(model, step)
    return runner


def _weighted_over_ranks(logs: dict, share: float, comm, device) -> dict:
    """A step's own logs (not model metrics): the workers' values weighted by their share of
    the last global batch (a batch mean becomes the global batch's mean)."""
    from distkeras.distributed import sync

    keys = [k for k, v in logs.items() if isinstance(v, float)]
    if not keys:
        return logs
    values = torch.tensor([logs[k] * share for k in keys], dtype=torch.float64, device=device)
    sync.all_reduce_sum([values], comm)
    return {**logs, **{k: float(v) for k, v in zip(keys, values.tolist())}}
