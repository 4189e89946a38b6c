"""Bucketed gradient all-reduce, overlapped with the backward pass.

Parameters are grouped into flat buckets in reverse order (the order autograd produces their
gradients), the first bucket small so communication starts early, later ones ~25 MB. When
autograd has accumulated a parameter's gradient (``register_post_accumulate_grad_hook``) it is
copied into its bucket; a full bucket is all-reduced asynchronously while backward continues.
``finish()`` launches what is left, waits, and points every ``p.grad`` at its slice of the
reduced bucket: no copy back.

Buckets are launched strictly in index order on every rank, whatever order gradients arrive
in, so collectives always match across ranks.

Parameters a step did not reach on some rank (a branch unused there) count as zeros on that
rank, so nothing hangs. Each bucket also carries one "used" counter per parameter, summed
with the gradients: a parameter no rank produced a gradient for keeps ``grad = None``, as on
one worker, so the optimizer leaves it and its state alone. The counters are read back only
on a rank that missed a gradient itself (a parameter it did reach is used globally), so the
usual step never waits on the host.

The loss each worker differentiates is already normalised by the GLOBAL batch (see
``training/compile_utils.py``), so the reduction is a plain sum.

The last bucket (reduced last) carries one more element, a control slot: ``prepare(vote=1.0)``
puts this rank's vote there and ``votes()`` reads the sum over ranks after ``finish()``. fit
uses it to agree on stopping after a preemption signal without an extra collective. With
``loss_slots=K`` it also carries K loss values (``prepare(losses=...)``, summed into
``summed_losses()``): fit sends each worker's share of the batch loss (and per-output
losses), so every rank logs the global batch's loss after each step, again for free.
"""

from __future__ import annotations

import torch

from distkeras.distributed.comm import Communicator

_FIRST_BUCKET_BYTES = 1 << 20
_BUCKET_BYTES = 25 << 20
_COMPRESSION = {None: None, "none": None, "fp16": torch.float16, "bf16": torch.bfloat16}


class _Bucket:
    def __init__(
        self, params: list[torch.nn.Parameter], compression: torch.dtype | None, control: int = 0
    ):
        self.params = params
        size = sum(p.numel() for p in params)
        # Gradients, then one "used" counter per parameter, then `control` extra slots.
        self.buffer = torch.zeros(
            size + len(params) + control, dtype=params[0].dtype, device=params[0].device
        )
        self.grads = self.buffer[:size]
        self.used = self.buffer[size : size + len(params)]
        self.control = self.buffer[size + len(params) :]
        self.wire = (
            self.buffer if compression is None else torch.empty_like(self.buffer, dtype=compression)
        )
        self.slices = {}
        offset = 0
        for p in params:
            self.slices[p] = (offset, p.numel())
            offset += p.numel()
        self.pending = len(params)
        self.filled: set[int] = set()
        self.work = None

    def reset(self) -> None:
        self.pending = len(self.params)
        self.filled.clear()
        self.work = None

    @property
    def complete(self) -> bool:
        return len(self.filled) == len(self.params)


class GradientReducer:
    """Sums gradients across ranks, bucket by bucket, as backward produces them.

    Args:
        params: the trainable parameters, in model order.
        comm: the communicator.
        bucket_bytes: target bucket size.
        first_bucket_bytes: size of the first bucket (the last layers' gradients).
        compression: None, "fp16" or "bf16": gradients travel in that dtype (the control
            values too).
        loss_slots: how many loss values ``prepare(losses=...)`` sends along.

    Example:
        >>> reducer = GradientReducer(params, comm)
        >>> reducer.prepare(); loss.backward(); reducer.finish(); optimizer.step(params)
    """

    def __init__(
        self,
        params,
        comm: Communicator,
        bucket_bytes: int = _BUCKET_BYTES,
        first_bucket_bytes: int = _FIRST_BUCKET_BYTES,
        compression=None,
        loss_slots: int = 0,
    ):
        if compression not in _COMPRESSION:
            raise ValueError(
                f"compression must be one of {sorted(k for k in _COMPRESSION if k)} or None. "
                f"Received: compression={compression!r}"
            )
        for name, value in (
            ("bucket_bytes", bucket_bytes),
            ("first_bucket_bytes", first_bucket_bytes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
        params = list(params)
        if len({id(p) for p in params}) != len(params):
            raise ValueError("GradientReducer received the same parameter twice.")
        self.comm = comm
        self.compression = _COMPRESSION[compression]
        self.loss_slots = loss_slots
        self.buckets = self._make_buckets(params, bucket_bytes, first_bucket_bytes)
        self.bucket_of = {}
        for index, bucket in enumerate(self.buckets):
            for p in bucket.params:
                self.bucket_of[p] = index
        self.next_to_launch = 0
        self.active = False
        self.grad_scale = 1.0
        self.handles = [
            p.register_post_accumulate_grad_hook(self._on_grad_ready) for p in self.bucket_of
        ]

    def _make_buckets(self, params, bucket_bytes, first_bucket_bytes) -> list[_Bucket]:
        buckets, current, size = [], [], 0
        # The first bucket is the small one: never larger than the others.
        limit = min(first_bucket_bytes, bucket_bytes)
        for p in reversed(params):
            key = (p.dtype, p.device)
            if current and ((current[0].dtype, current[0].device) != key or size >= limit):
                buckets.append(_Bucket(current, self.compression))
                current, size, limit = [], 0, bucket_bytes
            current.append(p)
            size += p.numel() * p.element_size()
        if current:
            buckets.append(_Bucket(current, self.compression, control=1 + self.loss_slots))
        return buckets

    def prepare(
        self, vote: float = 0.0, grad_scale: float = 1.0, losses: torch.Tensor | None = None
    ) -> None:
        """Call before backward: starts a new round of buckets; ``vote`` goes to ``votes()``,
        ``losses`` (``loss_slots`` values, or zeros when None) to ``summed_losses()``.

        ``grad_scale`` multiplies this rank's gradients before the sum: a user's
        ``train_step`` differentiates the mean over its own part of the batch, and weighting
        each part by its share of the global batch makes the sum the global-batch gradient.
        """
        self.grad_scale = float(grad_scale)
        for bucket in self.buckets:
            bucket.reset()
        if self.buckets:
            control = self.buckets[-1].control
            control[0].fill_(vote)
            if self.loss_slots:
                if losses is None:
                    control[1:].zero_()
                else:
                    control[1:].copy_(losses.detach().reshape(-1))
        self.next_to_launch = 0
        self.active = True

    def _on_grad_ready(self, param: torch.nn.Parameter) -> None:
        if not self.active:
            return  # a backward outside a training step (user code): not ours to reduce
        bucket = self.buckets[self.bucket_of[param]]
        offset, n = bucket.slices[param]
        bucket.buffer[offset : offset + n].copy_(param.grad.reshape(-1))
        if id(param) not in bucket.filled:
            bucket.filled.add(id(param))
            bucket.pending -= 1
        self._launch_ready()

    def _launch_ready(self) -> None:
        while self.next_to_launch < len(self.buckets):
            bucket = self.buckets[self.next_to_launch]
            if bucket.pending:
                return
            self._launch(bucket)
            self.next_to_launch += 1

    def _launch(self, bucket: _Bucket) -> None:
        if bucket.complete:
            bucket.used.fill_(1.0)
        else:
            flags = [1.0 if id(p) in bucket.filled else 0.0 for p in bucket.params]
            bucket.used.copy_(torch.tensor(flags, dtype=bucket.used.dtype))
        if self.grad_scale != 1.0:
            bucket.grads.mul_(self.grad_scale)
        if bucket.wire is not bucket.buffer:
            bucket.wire.copy_(bucket.buffer)
        bucket.work = self.comm.all_reduce(bucket.wire, async_op=True)

    def finish(self) -> None:
        """Call after backward: reduces what is left, waits, and sets ``p.grad`` views."""
        if not self.active:
            raise RuntimeError("GradientReducer.finish() called without prepare().")
        self.active = False
        for bucket in self.buckets[self.next_to_launch :]:
            if bucket.pending:
                # Gradients this step did not produce are zeros on this rank.
                for p in bucket.params:
                    if id(p) not in bucket.filled:
                        offset, n = bucket.slices[p]
                        bucket.buffer[offset : offset + n].zero_()
                bucket.pending = 0
        self._launch_ready()
        for bucket in self.buckets:
            bucket.work.wait()
            if bucket.wire is not bucket.buffer:
                bucket.buffer.copy_(bucket.wire)
            used = None if bucket.complete else bucket.used.tolist()
            for index, p in enumerate(bucket.params):
                if used is not None and used[index] < 0.5:
                    p.grad = None  # no rank reached it: as on one worker
                    continue
                offset, n = bucket.slices[p]
                p.grad = bucket.buffer[offset : offset + n].view_as(p)

    def has_gradients(self) -> bool:
        """Whether a gradient arrived since ``prepare()`` (this rank)."""
        return self.active and any(bucket.filled for bucket in self.buckets)

    def cancel(self) -> None:
        """Ends a round in which no gradient arrived, without a collective."""
        if self.has_gradients():
            raise RuntimeError("GradientReducer.cancel(): gradients arrived; call finish().")
        self.active = False

    def votes(self) -> torch.Tensor:
        """The sum of every rank's ``prepare(vote=...)`` (0-dim, on the device), after finish()."""
        if not self.buckets:
            return torch.zeros(())
        return self.buckets[-1].control[0]

    def summed_losses(self) -> torch.Tensor:
        """The sum over ranks of ``prepare(losses=...)`` (``loss_slots`` values, on the
        device), after finish(); a view the next round overwrites."""
        return self.buckets[-1].control[1:]

    def close(self) -> None:
        """Removes the autograd hooks."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.active = False
