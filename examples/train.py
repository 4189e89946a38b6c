"""Data-parallel training with distkeras: this one file runs unchanged in every launch mode.

One process (CPU, or one GPU):

    python examples/train.py

Several workers on one machine (gloo on CPU, NCCL on GPUs; ``--backend mpi`` for MPI):

    distkeras-launch -n 4 examples/train.py
    distkeras-launch -n 4 --backend mpi examples/train.py

Other launchers are detected from their environment variables, no code changes needed:

    torchrun --standalone --nproc-per-node 4 examples/train.py
    mpiexec -n 4 python examples/train.py
    srun --ntasks=4 python examples/train.py        # inside a SLURM allocation; or submit
                                                    # sbatch scripts/slurm/job.sbatch

Two nodes with 4 workers each (run on both; 10.0.0.1 is node 0, port 29500 open on it):

    node0$ distkeras-launch -n 4 --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 \\
               --master-port 29500 examples/train.py
    node1$ distkeras-launch -n 4 --nnodes 2 --node-rank 1 --master-addr 10.0.0.1 \\
               --master-port 29500 examples/train.py

    (or on each node: torchrun --nnodes 2 --node-rank R --master-addr 10.0.0.1
     --master-port 29500 --nproc-per-node 4 examples/train.py;
     under SLURM: srun --nodes 2 --ntasks-per-node 4 python examples/train.py)

What to know:

* ``--batch-size`` is the GLOBAL batch: with N workers each computes 1/N of every batch and
  the gradients are summed, so one worker and N workers train the same model (up to float
  rounding) from the same seed. Scale the batch, not the number of steps, with N.
* Every worker is given the full arrays; ``fit`` shards them. Metrics, ``evaluate`` and
  ``predict`` are global and identical on every worker.
* Only rank 0 (``distributed.is_chief()``) prints progress and writes files.
* A worker that fails ends the job; set ``DISTKERAS_TIMEOUT`` (seconds, default 300) to bound
  how long the others wait for a stuck one.

Options: ``--epochs``, ``--batch-size``, ``--samples`` (size of the synthetic dataset),
``--seed``, ``--save PATH`` (final weights as .npz, written by rank 0), ``--verbose``,
``--backup-dir DIR`` (``BackupAndRestore``: a rerun after a crash or a preemption, exit code
75, resumes there; see scripts/slurm/job.sbatch).
"""

import argparse

import numpy as np

import distkeras
from distkeras import distributed, layers


def make_data(samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three interleaved spirals in 2-D, lifted to 8 features: a small non-linear task."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=samples)
    radius = rng.uniform(0.1, 1.0, size=samples)
    angle = 3.0 * radius + labels * (2.0 * np.pi / 3.0) + rng.normal(0.0, 0.15, size=samples)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    columns = [points, points**2, points[:, :1] * points[:, 1:], np.sin(3 * points)]
    features = np.concatenate([*columns, radius[:, None]], axis=1)
    return features.astype("float32"), labels.astype("int64")


def build_model() -> distkeras.Model:
    model = distkeras.Sequential(
        [
            distkeras.Input(shape=(8,)),
            layers.Dense(64, activation="relu"),
            layers.Dense(64, activation="relu"),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=distkeras.optimizers.Adam(learning_rate=3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None, help="write the final weights here (.npz)")
    parser.add_argument("--verbose", type=int, default=1)
    parser.add_argument("--backup-dir", default=None, help="BackupAndRestore directory")
    args = parser.parse_args()

    # The same seed on every worker: the same data, and the same shuffling whatever N is
    # (fit also starts from rank 0's initial weights).
    distkeras.utils.set_random_seed(args.seed)
    x, y = make_data(args.samples, args.seed)
    model = build_model()
    model.fit(
        x,
        y,
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_split=0.1,
        verbose=args.verbose,
        callbacks=[distkeras.callbacks.BackupAndRestore(args.backup_dir)]
        if args.backup_dir
        else None,
    )
    loss, accuracy = model.evaluate(x, y, batch_size=args.batch_size, verbose=0)

    if distributed.is_chief():
        print(f"{distributed.world_size()} worker(s): loss {loss:.4f}, accuracy {accuracy:.4f}")
        if args.save:
            np.savez(args.save, *model.get_weights(), loss=loss, accuracy=accuracy)


if __name__ == "__main__":
    main()
