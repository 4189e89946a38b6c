"""BatchNormalization(synchronized=True) on real processes: OUTDIR/bn_rank<R>.pkl.

Every rank normalizes its own part of a batch in training mode and backpropagates its own
loss ``sum(outputs * loss_weights)``; ``tests/distributed/test_equivalence.py`` checks the
outputs, input gradients, summed gamma/beta gradients and moving statistics against the
formula applied to the whole batch at once.
"""

import os
import pickle
import sys

import numpy as np
import torch

from distkeras import distributed, layers

# name: (rows per rank, feature shape after the batch axis, masked, offset of the data)
CASES = {
    "large_mean": ([5, 3, 4], (3,), False, 100.0),  # |mean| >> std: needs stable moments
    "empty_rank": ([4, 0, 1], (3,), False, 0.0),
    "masked_sequence": ([2, 3, 1], (4, 3), True, 0.5),
}


def case_data(name: str, rank: int):
    """Rank ``rank``'s inputs, mask and loss weights (the test rebuilds all ranks' parts)."""
    rows, features, masked, offset = CASES[name]
    rng = np.random.default_rng([sum(map(ord, name)), rank])
    shape = (rows[rank], *features)
    x = (offset + rng.normal(size=shape)).astype("float32")
    weights = rng.normal(size=shape).astype("float32")
    mask = None
    if masked:
        mask = rng.random(size=shape[:-1]) > 0.3
    return x, mask, weights


def main(outdir: str) -> None:
    comm = distributed.init()
    record = {}
    for name in CASES:
        x, mask, weights = case_data(name, comm.rank)
        bn = layers.BatchNormalization(synchronized=True, momentum=0.9, epsilon=1e-3)
        bn.build((None, *x.shape[1:]))
        with torch.no_grad():  # non-trivial gamma/beta, the same on every rank
            bn.gamma.copy_(torch.linspace(0.5, 1.5, bn.gamma.numel()))
            bn.beta.copy_(torch.linspace(-0.2, 0.2, bn.beta.numel()))
        inputs = torch.tensor(x, requires_grad=True)
        kwargs = {"mask": torch.tensor(mask)} if mask is not None else {}
        outputs = bn(inputs, training=True, **kwargs)
        (outputs * torch.tensor(weights)).sum().backward()
        record[name] = {
            "outputs": outputs.detach().numpy(),
            "input_grad": inputs.grad.numpy(),
            "gamma_grad": bn.gamma.grad.numpy(),
            "beta_grad": bn.beta.grad.numpy(),
            "moving_mean": bn.moving_mean.detach().numpy(),
            "moving_variance": bn.moving_variance.detach().numpy(),
        }
    # Not synchronized: each worker normalizes its own part; one that holds no sample must
    # neither produce NaN nor touch its moving statistics.
    x, _, weights = case_data("empty_rank", comm.rank)
    bn = layers.BatchNormalization(momentum=0.9)
    inputs = torch.tensor(x, requires_grad=True)
    outputs = bn(inputs, training=True)
    (outputs * torch.tensor(weights)).sum().backward()
    record["unsynchronized_empty_rank"] = {
        "inputs": x,
        "outputs": outputs.detach().numpy(),
        "gamma_grad": bn.gamma.grad.numpy() if bn.gamma.grad is not None else None,
        "moving_mean": bn.moving_mean.detach().numpy(),
        "moving_variance": bn.moving_variance.detach().numpy(),
    }
    with open(os.path.join(outdir, f"bn_rank{comm.rank}.pkl"), "wb") as f:
        pickle.dump(record, f)


if __name__ == "__main__":
    main(sys.argv[1])
