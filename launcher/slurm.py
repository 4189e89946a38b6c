"""Reading a SLURM allocation: how many nodes, which one is this, where rank 0 listens.

Run one launcher per node (`srun --ntasks-per-node=1 distkeras-launch -n 4 train.py`); each
reads its node index from `SLURM_NODEID`, the node count from `SLURM_NNODES` and takes the
first host of the step's node list as the master. The port is derived from the job id with
the same formula the workers use under plain `srun`, so every node agrees without talking.
Hostlist parsing (`node[01-04,07],gpu-a[1-2]`) lives in `distkeras/distributed/env.py`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ._envmod import env as _env

expand_hostlist = _env.expand_hostlist
first_host = _env.first_host


@dataclasses.dataclass(frozen=True)
class SlurmAllocation:
    """What the launcher needs to know about the SLURM allocation it runs in.

    Attributes:
        job_id: `SLURM_JOB_ID`.
        nnodes: Nodes taking part (`SLURM_NNODES`).
        node_rank: This node's index among them (`SLURM_NODEID`).
        master_addr: First host of `SLURM_STEP_NODELIST` (else `SLURM_NODELIST`).
        master_port: `10000 + job_id % 20000`.
        in_step: True when the launcher runs inside an `srun` step (not the batch script).
    """

    job_id: str
    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int
    in_step: bool


def read_allocation(environ: Mapping[str, str]) -> SlurmAllocation | None:
    """Returns the allocation when `SLURM_JOB_ID` and `SLURM_NODELIST` are set, else None.

    Raises:
        ValueError: The variables are malformed, or the allocation spans several nodes but
            this launcher runs in the batch script instead of once per node under srun.
    """
    job_id = environ.get(_env.SLURM_JOB_ID, "").strip()
    nodelist = environ.get(_env.SLURM_STEP_NODELIST) or environ.get(_env.SLURM_NODELIST)
    if not job_id or not environ.get(_env.SLURM_NODELIST):
        return None
    hosts = expand_hostlist(nodelist)
    nnodes = _int(environ, _env.SLURM_NNODES, default=len(hosts))
    node_rank = _int(environ, _env.SLURM_NODEID, default=0)
    if nnodes < 1 or not 0 <= node_rank < nnodes:
        raise ValueError(
            f"{_env.SLURM_NODEID} must be in [0, {_env.SLURM_NNODES}={nnodes}). "
            f"Received: {_env.SLURM_NODEID}={node_rank}"
        )
    in_step = _env.SLURM_STEP_ID in environ or _env.SLURM_STEPID in environ
    allocation = SlurmAllocation(
        job_id=job_id,
        nnodes=nnodes,
        node_rank=node_rank,
        master_addr=hosts[0],
        master_port=_env.slurm_master_port(job_id),
        in_step=in_step,
    )
    _check_one_launcher_per_node(environ, allocation)
    return allocation


def _check_one_launcher_per_node(environ: Mapping[str, str], alloc: SlurmAllocation) -> None:
    if alloc.nnodes > 1 and not alloc.in_step:
        raise ValueError(
            f"distkeras-launch runs in the batch script of a {alloc.nnodes}-node allocation, "
            "so only the first node would start workers. Start one launcher per node: "
            "srun --ntasks-per-node=1 distkeras-launch -n <workers per node> script.py "
            "(or pass --nnodes 1 to use this node only)."
        )
    per_node = environ.get(_env.SLURM_STEP_TASKS_PER_NODE)
    if alloc.in_step and per_node and max(_env.parse_tasks_per_node(per_node)) > 1:
        raise ValueError(
            f"srun started several launchers per node ({_env.SLURM_STEP_TASKS_PER_NODE}="
            f"{per_node}); they would collide. Use srun --ntasks-per-node=1 distkeras-launch "
            "-n <workers per node> ..., or drop distkeras-launch and let srun start one task "
            "per worker."
        )


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer. Received: {name}={raw!r}") from None
