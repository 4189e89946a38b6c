"""Communicator over ``torch.distributed``: gloo on CPU, NCCL on CUDA, with a timeout."""

from __future__ import annotations

import datetime

import torch
import torch.distributed as dist

from distkeras.distributed.comm import Communicator

_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


class TorchCommunicator(Communicator):
    """Joins (or reuses) the default torch.distributed process group.

    Example:
        >>> comm = TorchCommunicator(rank=0, world_size=2, master_addr="127.0.0.1",
        ...                          master_port=29500)
    """

    def __init__(self, rank: int, world_size: int, master_addr: str, master_port: int,
                 backend: str | None = None, timeout_s: float = 300.0):
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        self.backend = backend
        if not dist.is_initialized():
            dist.init_process_group(
                backend=backend,
                init_method=f"tcp://{master_addr}:{int(master_port)}",
                rank=rank,
                world_size=world_size,
                # A dead peer turns into an error on the survivors after this long.
                timeout=datetime.timedelta(seconds=timeout_s),
            )
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()

    def all_reduce(self, tensor, op="sum", async_op=False):
        return dist.all_reduce(tensor, op=_OPS[op], async_op=async_op)

    def broadcast(self, tensor, src=0, async_op=False):
        return dist.broadcast(tensor, src=src, async_op=async_op)

    def all_gather_object(self, obj):
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj, src=0):
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def barrier(self):
        dist.barrier()

    def shutdown(self):
        if dist.is_initialized():
            dist.destroy_process_group()
