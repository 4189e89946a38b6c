"""Distributed training throughput: distkeras on each backend against torch DDP (gloo).

    python scripts/bench_dist.py                 # 2 workers, 3 alternated rounds
    python scripts/bench_dist.py --workers 2 --rounds 5 --steps 200

Every run trains a 784-512-512-10 MLP with global batch 128 and Adam on synthetic data, one
thread per worker, and reports samples/s measured by rank 0 over ``--steps`` steps after a
warm-up. Configurations run one after another within each round (alternated), so drift in
machine speed hits all alike; the table shows medians, the ratio to DDP on the same number of
workers, and scaling efficiency: rate on N workers / (N x rate on one worker).

The hand-written DDP loop is what a good engineer writes: DistributedDataParallel over gloo,
each rank taking its half of every global batch (tensors converted once), F.cross_entropy,
torch.optim.Adam (foreach), zero_grad(set_to_none=True), the loss summed on device.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FEATURES, HIDDEN, CLASSES, GLOBAL_BATCH = 784, 512, 10, 128


def make_data(steps: int):
    import numpy as np

    rng = np.random.default_rng(0)
    n = GLOBAL_BATCH * steps
    x = rng.standard_normal((n, FEATURES), dtype="float32")
    y = rng.integers(0, CLASSES, size=n)
    return x, y


def worker_distkeras(steps: int, warmup: int) -> None:
    import torch

    torch.set_num_threads(1)
    from distkeras import distributed
    from distkeras.layers import Dense
    from distkeras.models import Sequential
    from distkeras.utils import set_random_seed

    set_random_seed(0)
    model = Sequential(
        [
            Dense(HIDDEN, activation="relu", input_dim=FEATURES),
            Dense(HIDDEN, activation="relu"),
            Dense(CLASSES, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = make_data(steps)
    model.fit(
        x[: GLOBAL_BATCH * warmup],
        y[: GLOBAL_BATCH * warmup],
        batch_size=GLOBAL_BATCH,
        epochs=1,
        verbose=0,
        shuffle=False,
    )
    distributed.barrier()
    start = time.perf_counter()
    model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=1, verbose=0, shuffle=False)
    elapsed = time.perf_counter() - start
    if distributed.is_chief():
        print(json.dumps({"samples_per_s": GLOBAL_BATCH * steps / elapsed}), flush=True)


def worker_ddp(steps: int, warmup: int) -> None:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    torch.set_num_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("gloo", init_method="env://")
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(
        nn.Linear(FEATURES, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, CLASSES),
    )
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    x, y = make_data(steps)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    part = GLOBAL_BATCH // world
    loss_sum = torch.zeros(())

    def run(n_steps: int) -> None:
        for step in range(n_steps):
            lo = step * GLOBAL_BATCH + rank * part
            xb, yb = x[lo : lo + part], y[lo : lo + part]
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum.add_(loss.detach())

    run(warmup)
    if world > 1:
        dist.barrier()
    start = time.perf_counter()
    run(steps)
    if world > 1:
        dist.all_reduce(loss_sum)
    float(loss_sum)
    elapsed = time.perf_counter() - start
    if rank == 0:
        print(json.dumps({"samples_per_s": GLOBAL_BATCH * steps / elapsed}), flush=True)
    if world > 1:
        dist.destroy_process_group()


def run_config(kind: str, workers: int, backend: str, steps: int, warmup: int) -> float:
    worker_args = [
        os.path.abspath(__file__),
        "--worker",
        kind,
        "--steps",
        str(steps),
        "--warmup",
        str(warmup),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", DISTKERAS_DEVICE="cpu")
    if workers == 1:
        cmd = [sys.executable, *worker_args]
    else:
        cmd = [
            sys.executable,
            "-m",
            "launcher",
            "-n",
            str(workers),
            "--backend",
            backend,
            *worker_args,
        ]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    for line in out.stdout.splitlines():
        text = line.split("] ", 1)[-1] if line.startswith("[rank") else line
        if text.startswith("{"):
            return json.loads(text)["samples_per_s"]
    raise RuntimeError(
        f"{kind} ({backend}, {workers} workers) failed:\n{out.stdout}\n{out.stderr[-3000:]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--worker", choices=["distkeras", "ddp"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "distkeras":
        return worker_distkeras(args.steps, args.warmup)
    if args.worker == "ddp":
        return worker_ddp(args.steps, args.warmup)

    n = args.workers
    configs = [
        ("torch, 1 worker", "ddp", 1, "torch"),
        ("distkeras, 1 worker", "distkeras", 1, "torch"),
        (f"torch DDP gloo, {n} workers", "ddp", n, "torch"),
        (f"distkeras torch/gloo, {n} workers", "distkeras", n, "torch"),
        (f"distkeras mpi, {n} workers", "distkeras", n, "mpi"),
        (f"distkeras default (auto), {n} workers", "distkeras", n, "auto"),
    ]
    rates: dict[str, list[float]] = {name: [] for name, *_ in configs}
    for _ in range(args.rounds):
        for name, kind, workers, backend in configs:
            rates[name].append(run_config(kind, workers, backend, args.steps, args.warmup))
    med = {name: statistics.median(values) for name, values in rates.items()}
    ddp = med[f"torch DDP gloo, {n} workers"]
    single = med["torch, 1 worker"]
    print(
        f"784-512-512-10 MLP, global batch {GLOBAL_BATCH}, Adam, 1 thread per worker, "
        f"{args.steps} steps, median of {args.rounds} rounds"
    )
    print(f"{'configuration':40s} {'samples/s':>10s} {'vs DDP':>7s} {'scaling':>8s}")
    for name, _, workers, _ in configs:
        rate = med[name]
        scaling = rate / (workers * single) if workers > 1 else rate / single
        print(f"{name:40s} {rate:10.0f} {rate / ddp:7.2f} {scaling:8.2f}")


if __name__ == "__main__":
    main()
