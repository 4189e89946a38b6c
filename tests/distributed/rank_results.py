"""The 1 = N check the random-layer equivalence tests share: run a script that saves one
``rank{r}.npz`` per worker, load them, and compare every array with the one-worker run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.distributed import jobs

ATOL, RTOL = 2e-5, 1e-4  # summation order differs between 1 and N workers


def run_ranks(tmp_path_factory, script: Path, tag: str, workers: int, backend: str) -> list[dict]:
    """Runs ``script`` once per session under ``tag`` and returns each rank's arrays."""

    def run_in(outdir: Path) -> jobs.Outcome:
        command = jobs.launch_command(workers, backend, script, str(outdir))
        return jobs.run(command, outdir, jobs.worker_env())

    outcome = jobs.once(tmp_path_factory, tag, run_in).check()
    results = []
    for rank in range(workers):
        with np.load(outcome.outdir / f"rank{rank}.npz") as data:
            results.append({key: data[key] for key in data.files})
    return results


def assert_ranks_match(results: list[dict], reference: dict, workers: int) -> None:
    """Every rank saved the same keys as the reference and the same values, to float error."""
    for rank, result in enumerate(results):
        assert int(result["world_size"]) == workers
        assert sorted(result) == sorted(reference)
        for key in sorted(reference):
            if key != "world_size":
                np.testing.assert_allclose(
                    result[key], reference[key], rtol=RTOL, atol=ATOL, err_msg=f"rank {rank}: {key}"
                )
