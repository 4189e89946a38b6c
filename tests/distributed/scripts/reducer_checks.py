"""GradientReducer on real processes; results go to OUTDIR/reducer_rank<R>.pkl.

Every case records this rank's plain local gradients (no reducer) next to the reduced ones,
so ``tests/distributed/test_reducer.py`` checks "reduced == sum over ranks of local".
"""

import os
import pickle
import sys

import torch

from distkeras import distributed
from distkeras.distributed.reducer import GradientReducer


def grads(params) -> list:
    return [None if p.grad is None else p.grad.detach().clone().numpy() for p in params]


def mlp() -> torch.nn.Sequential:
    torch.manual_seed(0)  # the same weights on every rank
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 3),
    )


def mlp_loss(model, rank: int, step: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(100 * step + rank)
    x = torch.randn(5 + rank, 6, generator=generator)  # ranks hold different batch sizes
    return 0.1 * model(x).square().sum()


def buckets_case(comm, compression=None) -> dict:
    model = mlp()
    params = list(model.parameters())
    out = {"local": [], "reduced": []}
    for step in range(2):
        mlp_loss(model, comm.rank, step).backward()
        out["local"].append(grads(params))
        for p in params:
            p.grad = None
    # 64/200 bytes: the 6 tensors spread over several buckets.
    reducer = GradientReducer(
        params, comm, bucket_bytes=200, first_bucket_bytes=64, compression=compression
    )
    out["num_buckets"] = len(reducer.buckets)
    for step in range(2):
        reducer.prepare()
        mlp_loss(model, comm.rank, step).backward()
        reducer.finish()
        out["reduced"].append(grads(params))
        for p in params:
            p.grad = None
    reducer.close()
    return out


class Branches(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.trunk = torch.nn.Linear(4, 4)
        self.branch_a = torch.nn.Linear(4, 2)
        self.branch_b = torch.nn.Linear(4, 2)  # used on rank 0 only
        self.never_used = torch.nn.Linear(4, 1)  # used on no rank

    def forward(self, x, use_b: bool):
        h = torch.tanh(self.trunk(x))
        out = self.branch_a(h).sum()
        if use_b:
            out = out + self.branch_b(h).square().sum()
        return out


def unused_case(comm) -> dict:
    model = Branches()
    params = list(model.parameters())
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(comm.rank))
    use_b = comm.rank == 0
    model(x, use_b).backward()
    local = grads(params)
    for p in params:
        p.grad = None
    reducer = GradientReducer(params, comm, bucket_bytes=32, first_bucket_bytes=16)
    reduced = []
    for _ in range(2):  # a second step reuses the buckets after a partial one
        reducer.prepare()
        model(x, use_b).backward()
        reducer.finish()
        reduced.append(grads(params))
        for p in params:
            p.grad = None
    # A backward outside prepare()/finish() (user code) must not start collectives: only
    # rank 0 runs one; a stray all-reduce would mismatch the all_reduce below and time out.
    if comm.rank == 0:
        model(x, True).backward()
    outside = grads(params)
    check = torch.ones(2)
    comm.all_reduce(check)
    reducer.close()
    return {
        "names": [name for name, _ in model.named_parameters()],
        "local": local,
        "reduced": reduced,
        "outside": outside,
        "after_outside": check.tolist(),
        "num_buckets": len(reducer.buckets),
    }


def main(outdir: str) -> None:
    comm = distributed.init()
    record = {
        "buckets": buckets_case(comm),
        "fp16": buckets_case(comm, "fp16"),
        "bf16": buckets_case(comm, "bf16"),
        "unused": unused_case(comm),
    }
    with open(os.path.join(outdir, f"reducer_rank{comm.rank}.pkl"), "wb") as f:
        pickle.dump(record, f)


if __name__ == "__main__":
    main(sys.argv[1])
