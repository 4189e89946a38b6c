"""Communicator collectives on real processes; results go to OUTDIR/comm_rank<R>.pkl.

Each rank contributes values that depend on its rank and are exact in every dtype used, so
``tests/distributed/test_comm.py`` can recompute every expected result with numpy.
"""

import os
import pickle
import sys

import torch

from distkeras import distributed

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def contribution(rank: int) -> list[float]:
    """What rank ``rank`` puts into every all-reduce (the test repeats this formula)."""
    return [rank + 1.0, -2.0 * rank, 0.5 * (rank + 1), 3.0 - rank, 8.0 * (rank % 2)]


def main(outdir: str) -> None:
    comm = distributed.init()
    rank, world = comm.rank, comm.world_size
    record = {"rank": rank, "world_size": world, "backend": comm.backend}

    for dtype_name, dtype in DTYPES.items():
        for op in ("sum", "max", "min"):
            for mode in ("sync", "async"):
                tensor = torch.tensor(contribution(rank), dtype=dtype)
                if mode == "async":
                    work = comm.all_reduce(tensor, op=op, async_op=True)
                    work.wait()
                    work.wait()  # waiting twice is harmless
                else:
                    assert comm.all_reduce(tensor, op=op) is None
                record[f"all_reduce/{dtype_name}/{op}/{mode}"] = (
                    str(tensor.dtype),
                    tensor.float().tolist(),
                )

    # Several async operations in flight at once, completed in reverse order.
    pending = []
    for i in range(3):
        tensor = torch.full((4,), float(rank + i))
        pending.append((tensor, comm.all_reduce(tensor, async_op=True)))
    for _, work in reversed(pending):
        work.wait()
    record["all_reduce/overlapped"] = [t.tolist() for t, _ in pending]

    last = world - 1
    for dtype_name, dtype in DTYPES.items():
        for src in (0, last):
            tensor = torch.full((3,), 10.0 * rank + 0.5, dtype=dtype)
            comm.broadcast(tensor, src=src)
            record[f"broadcast/{dtype_name}/{src}"] = tensor.float().tolist()
    tensor = torch.arange(6, dtype=torch.float32) * (rank + 1)
    comm.broadcast(tensor, src=last, async_op=True).wait()
    record["broadcast/async"] = tensor.tolist()

    payload = {"rank": rank, "text": "x" * (100 * rank), "nested": [rank, (rank, "r")]}
    record["all_gather_object"] = comm.all_gather_object(payload)
    record["broadcast_object"] = comm.broadcast_object({"from": rank, "big": "y" * 5000}, src=last)

    # Barrier: the last rank writes a file before entering; everyone sees it after leaving.
    marker = os.path.join(outdir, "barrier_marker")
    if rank == last:
        with open(marker, "w") as f:
            f.write("written before the barrier")
    comm.barrier()
    record["barrier_saw_marker"] = os.path.exists(marker)
    distributed.barrier()  # the public function too

    record["public"] = {
        "rank": distributed.rank(),
        "world_size": distributed.world_size(),
        "local_rank": distributed.local_rank(),
        "is_chief": distributed.is_chief(),
        "is_initialized": distributed.is_initialized(),
        "same_communicator": distributed.communicator() is comm,
    }
    with open(os.path.join(outdir, f"comm_rank{rank}.pkl"), "wb") as f:
        pickle.dump(record, f)


if __name__ == "__main__":
    main(sys.argv[1])
