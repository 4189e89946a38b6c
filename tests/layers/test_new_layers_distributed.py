"""1 = N workers for the Keras 3.15 layers with training-time state or randomness:
GroupQueryAttention and ConvLSTM2D dropout (per-sample masks), SpectralNormalization's
power-iteration updates, and a TorchModuleWrapper's parameters in the gradient all-reduce."""

import runpy
from pathlib import Path

import numpy as np

from tests.distributed import jobs

SCRIPT = Path(__file__).resolve().parent / "scripts" / "new_layers_equivalence.py"
ATOL, RTOL = 2e-5, 1e-4  # summation order differs between 1 and N workers


def _run(tmp_path_factory, name: str, workers: int) -> list[dict]:
    def run_in(outdir: Path) -> jobs.Outcome:
        command = jobs.launch_command(workers, "torch", SCRIPT, str(outdir))
        return jobs.run(command, outdir, jobs.worker_env())

    outcome = jobs.once(tmp_path_factory, f"new_layers_{name}", run_in).check()
    results = []
    for rank in range(workers):
        with np.load(outcome.outdir / f"rank{rank}.npz") as data:
            results.append({key: data[key] for key in data.files})
    return results


def test_two_workers_reproduce_one_worker(tmp_path_factory, tmp_path):
    # The one-worker reference runs in this process (no launch needed for it).
    runpy.run_path(str(SCRIPT), run_name="reference")["main"](str(tmp_path))
    with np.load(tmp_path / "rank0.npz") as data:
        reference = {key: data[key] for key in data.files}
    assert int(reference["world_size"]) == 1
    # 4 GQA projections x 2, the ConvLSTM cell's 3, SN's kernel, vector_u and bias,
    # EinsumDense's 2 and the wrapped Linear's 2.
    assert len([k for k in reference if k.startswith("weight_")]) == 18
    assert not np.allclose(reference["history_loss"][0], reference["history_loss"][-1])
    for result in _run(tmp_path_factory, "two", 2):
        assert int(result["world_size"]) == 2
        differ = [
            key
            for key, value in reference.items()
            if key != "world_size" and not np.allclose(result[key], value, atol=ATOL, rtol=RTOL)
        ]
        assert not differ, f"1 and 2 workers differ in {differ}"
