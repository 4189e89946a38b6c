"""Who am I: rank, world size and rendezvous address from whatever started this process.

This module imports nothing but the standard library (no torch, no distkeras) so that the
`distkeras-launch` command can load it by file path and start in well under a second. The
environment-variable names below are the contract between the launcher and the workers.

Detection order (the first match wins):

1. `distkeras-launch`: `DISTKERAS_LAUNCHER=1` plus `RANK`/`WORLD_SIZE`/`LOCAL_RANK`/...
2. torchrun (or any torch `env://` setup): `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
   `MASTER_ADDR`, `MASTER_PORT`.
3. Open MPI's `mpirun`/`mpiexec`: `OMPI_COMM_WORLD_RANK`/`_SIZE`/`_LOCAL_RANK`/`_LOCAL_SIZE`.
4. MPICH / Intel MPI (Hydra): `PMI_RANK`/`PMI_SIZE`, `MPI_LOCALRANKID`/`MPI_LOCALNRANKS`.
5. SLURM `srun` steps: `SLURM_PROCID`/`SLURM_NTASKS`/`SLURM_LOCALID`; the master is the first
   host of `SLURM_STEP_NODELIST` (else `SLURM_NODELIST`) and the port is derived from
   `SLURM_JOB_ID`, so every task computes the same address without talking to the others.
   The batch script itself (no `srun`, hence no `SLURM_STEP_ID`) is a single process.

Example:

    >>> from distkeras.distributed import env
    >>> info = env.detect({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1",
    ...                    "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"})
    >>> info.launcher, info.rank, info.world_size
    ('torchrun', 1, 2)
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

# Set by distkeras-launch for every worker (the launcher imports these names from here).
ENV_RANK = "RANK"
ENV_WORLD_SIZE = "WORLD_SIZE"
ENV_LOCAL_RANK = "LOCAL_RANK"
ENV_LOCAL_WORLD_SIZE = "LOCAL_WORLD_SIZE"
ENV_MASTER_ADDR = "MASTER_ADDR"
ENV_MASTER_PORT = "MASTER_PORT"
ENV_LAUNCHER = "DISTKERAS_LAUNCHER"  # "1" in every worker started by distkeras-launch
ENV_BACKEND = "DISTKERAS_BACKEND"  # "torch" or "mpi"; also a user override anywhere
ENV_RESTART_COUNT = "DISTKERAS_RESTART_COUNT"
# torchrun's own count of how many times its agent restarted the workers.
TORCHELASTIC_RESTART_COUNT = "TORCHELASTIC_RESTART_COUNT"

# Open MPI.
OMPI_RANK = "OMPI_COMM_WORLD_RANK"
OMPI_SIZE = "OMPI_COMM_WORLD_SIZE"
OMPI_LOCAL_RANK = "OMPI_COMM_WORLD_LOCAL_RANK"
OMPI_LOCAL_SIZE = "OMPI_COMM_WORLD_LOCAL_SIZE"

# MPICH and Intel MPI (Hydra process manager).
PMI_RANK = "PMI_RANK"
PMI_SIZE = "PMI_SIZE"
MPICH_LOCAL_RANK = "MPI_LOCALRANKID"
MPICH_LOCAL_SIZE = "MPI_LOCALNRANKS"

# SLURM.
SLURM_JOB_ID = "SLURM_JOB_ID"
SLURM_STEP_ID = "SLURM_STEP_ID"
SLURM_STEPID = "SLURM_STEPID"  # older spelling, still exported by srun
SLURM_PROCID = "SLURM_PROCID"
SLURM_NTASKS = "SLURM_NTASKS"
SLURM_LOCALID = "SLURM_LOCALID"
SLURM_NODEID = "SLURM_NODEID"
SLURM_NNODES = "SLURM_NNODES"
SLURM_NODELIST = "SLURM_NODELIST"
SLURM_STEP_NODELIST = "SLURM_STEP_NODELIST"
SLURM_STEP_TASKS_PER_NODE = "SLURM_STEP_TASKS_PER_NODE"
SLURM_TASKS_PER_NODE = "SLURM_TASKS_PER_NODE"

LAUNCHERS = ("distkeras", "torchrun", "openmpi", "mpich", "slurm", "none")
BACKENDS = ("torch", "mpi")
LOOPBACK = "127.0.0.1"
SLURM_PORT_BASE = 10000
SLURM_PORT_SPAN = 20000


@dataclasses.dataclass(frozen=True)
class DistEnv:
    """The distributed identity of this process.

    Attributes:
        rank: Global rank, `0 <= rank < world_size`.
        world_size: Number of worker processes in the job.
        local_rank: Rank among the workers on this node (selects the GPU).
        local_world_size: Number of workers on this node.
        master_addr: Host of the rank-0 rendezvous, or None when the launcher gives none
            (MPI backends do not need one).
        master_port: Port of the rendezvous, or None.
        launcher: What started the process: one of `LAUNCHERS`.
        backend: Backend hint: "mpi" under an MPI launcher, "torch" under torchrun, the value
            of `DISTKERAS_BACKEND` when set, else None (let the caller choose).
        restart_count: `DISTKERAS_RESTART_COUNT` (plus torchrun's
            `TORCHELASTIC_RESTART_COUNT` under torchrun), 0 unless a supervisor restarted
            the job.

    Example:

        >>> DistEnv().world_size
        1
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    master_addr: str | None = None
    master_port: int | None = None
    launcher: str = "none"
    backend: str | None = None
    restart_count: int = 0

    @property
    def is_distributed(self) -> bool:
        """True when more than one worker takes part in the job."""
        return self.world_size > 1

    @property
    def is_chief(self) -> bool:
        """True on rank 0, the worker that logs and writes checkpoints."""
        return self.rank == 0

    def get_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DistEnv:
        return cls(**config)


def detect(environ: Mapping[str, str] | None = None) -> DistEnv:
    """Reads this process's distributed identity from the environment.

    Args:
        environ: The variables to read; `os.environ` when None.

    Returns:
        A `DistEnv`; `DistEnv(launcher="none")` (rank 0 of 1) when nothing launched us.

    Raises:
        ValueError: A variable holds a value that is not a valid integer or is out of range,
            naming the variable.
    """
    env = os.environ if environ is None else environ
    restart = _int(env, ENV_RESTART_COUNT, default=0)
    hint = _backend_override(env)

    if env.get(ENV_LAUNCHER) == "1" and ENV_RANK in env and ENV_WORLD_SIZE in env:
        return _from_torch_style(env, "distkeras", hint, restart)
    if ENV_RANK in env and ENV_WORLD_SIZE in env:
        # A count inherited from outside (a requeued batch job) adds to torchrun's restarts.
        restart += _int(env, TORCHELASTIC_RESTART_COUNT, default=0)
        return _from_torch_style(env, "torchrun", hint or "torch", restart)
    if OMPI_RANK in env and OMPI_SIZE in env:
        return _from_mpi(
            env, "openmpi", OMPI_RANK, OMPI_SIZE, OMPI_LOCAL_RANK, OMPI_LOCAL_SIZE, hint, restart
        )
    if PMI_RANK in env and PMI_SIZE in env:
        return _from_mpi(
            env, "mpich", PMI_RANK, PMI_SIZE, MPICH_LOCAL_RANK, MPICH_LOCAL_SIZE, hint, restart
        )
    if _in_slurm_step(env):
        return _from_slurm(env, hint, restart)
    return DistEnv(backend=hint, restart_count=restart)


def _from_torch_style(
    env: Mapping[str, str], launcher: str, hint: str | None, restart: int
) -> DistEnv:
    rank = _int(env, ENV_RANK)
    world = _int(env, ENV_WORLD_SIZE)
    # Without LOCAL_* (a hand-written env:// setup) assume a single node.
    local_rank = _int(env, ENV_LOCAL_RANK, default=rank)
    local_world = _int(env, ENV_LOCAL_WORLD_SIZE, default=world)
    port = _int(env, ENV_MASTER_PORT, default=None)
    return _checked(
        rank,
        world,
        local_rank,
        local_world,
        env.get(ENV_MASTER_ADDR) or None,
        port,
        launcher,
        hint,
        restart,
        (ENV_RANK, ENV_WORLD_SIZE, ENV_LOCAL_RANK, ENV_LOCAL_WORLD_SIZE),
    )


def _from_mpi(
    env: Mapping[str, str],
    launcher: str,
    rank_var: str,
    size_var: str,
    local_rank_var: str,
    local_size_var: str,
    hint: str | None,
    restart: int,
) -> DistEnv:
    rank = _int(env, rank_var)
    world = _int(env, size_var)
    if local_rank_var in env:
        local_rank = _int(env, local_rank_var)
        local_world = _int(env, local_size_var, default=world)
    elif SLURM_LOCALID in env:  # MPI started by srun with a PMI plugin
        local_rank = _int(env, SLURM_LOCALID)
        local_world = _slurm_local_world_size(env, world)
    else:
        local_rank, local_world = rank, world
    addr = env.get(ENV_MASTER_ADDR) or (LOOPBACK if local_world == world else None)
    port = _int(env, ENV_MASTER_PORT, default=None)
    return _checked(
        rank,
        world,
        local_rank,
        local_world,
        addr,
        port,
        launcher,
        hint or "mpi",
        restart,
        (rank_var, size_var, local_rank_var, local_size_var),
    )


def _in_slurm_step(env: Mapping[str, str]) -> bool:
    # srun exports SLURM_STEP_ID; the batch script (step "batch") has SLURM_PROCID=0 and the
    # job's SLURM_NTASKS too, but it is one process and must not wait for the others.
    has_step = SLURM_STEP_ID in env or SLURM_STEPID in env
    return has_step and SLURM_PROCID in env and SLURM_NTASKS in env


def _from_slurm(env: Mapping[str, str], hint: str | None, restart: int) -> DistEnv:
    rank = _int(env, SLURM_PROCID)
    world = _int(env, SLURM_NTASKS)
    local_rank = _int(env, SLURM_LOCALID, default=0)
    local_world = _slurm_local_world_size(env, world)
    nodelist = env.get(SLURM_STEP_NODELIST) or env.get(SLURM_NODELIST)
    addr = env.get(ENV_MASTER_ADDR) or (first_host(nodelist) if nodelist else LOOPBACK)
    port = _int(env, ENV_MASTER_PORT, default=None)
    if port is None and env.get(SLURM_JOB_ID):
        port = slurm_master_port(env[SLURM_JOB_ID])
    return _checked(
        rank,
        world,
        local_rank,
        local_world,
        addr,
        port,
        "slurm",
        hint,
        restart,
        (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_STEP_TASKS_PER_NODE),
    )


def _slurm_local_world_size(env: Mapping[str, str], world: int) -> int:
    spec = env.get(SLURM_STEP_TASKS_PER_NODE) or env.get(SLURM_TASKS_PER_NODE)
    if not spec:
        return world
    counts = parse_tasks_per_node(spec)
    node = _int(env, SLURM_NODEID, default=0)
    return counts[node] if node < len(counts) else counts[-1]


def _checked(
    rank: int,
    world: int,
    local_rank: int,
    local_world: int,
    addr: str | None,
    port: int | None,
    launcher: str,
    hint: str | None,
    restart: int,
    names: tuple[str, str, str, str],
) -> DistEnv:
    if world < 1:
        raise ValueError(f"{names[1]} must be >= 1. Received: {names[1]}={world}")
    if not 0 <= rank < world:
        raise ValueError(
            f"{names[0]} must be in [0, {names[1]}={world}). Received: {names[0]}={rank}"
        )
    if local_world < 1 or not 0 <= local_rank < local_world:
        raise ValueError(
            f"{names[2]} must be in [0, {names[3]}={local_world}). "
            f"Received: {names[2]}={local_rank}"
        )
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{ENV_MASTER_PORT} must be in [1, 65535]. Received: {port}")
    return DistEnv(rank, world, local_rank, local_world, addr, port, launcher, hint, restart)


def _backend_override(env: Mapping[str, str]) -> str | None:
    value = env.get(ENV_BACKEND, "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in BACKENDS:
        raise ValueError(
            f"{ENV_BACKEND} must be one of {BACKENDS} or 'auto'. Received: {ENV_BACKEND}={value!r}"
        )
    return value


def _int(env: Mapping[str, str], name: str, default: Any = ...) -> Any:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        if default is ...:
            raise ValueError(f"Environment variable {name} is not set.")
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(
            f"Environment variable {name} must be an integer. Received: {name}={raw!r}"
        ) from None


def slurm_master_port(job_id: str | int) -> int:
    """The rendezvous port every task of a SLURM job derives from the job id.

    Jobs sharing a node get different ports unless their ids collide modulo 20000.

    Example:

        >>> slurm_master_port("123456")
        13456
    """
    digits = re.match(r"\d+", str(job_id).strip())
    if digits is None:
        raise ValueError(f"{SLURM_JOB_ID} must start with a number. Received: {job_id!r}")
    return SLURM_PORT_BASE + int(digits.group()) % SLURM_PORT_SPAN


_TASKS_ITEM = re.compile(r"^(\d+)(?:\(x(\d+)\))?$")


def parse_tasks_per_node(spec: str) -> list[int]:
    """Expands SLURM's compressed tasks-per-node string: `"2(x3),1"` -> `[2, 2, 2, 1]`."""
    counts: list[int] = []
    for item in spec.split(","):
        match = _TASKS_ITEM.match(item.strip())
        if match is None:
            raise ValueError(f"Cannot parse SLURM tasks-per-node string. Received: {spec!r}")
        counts.extend([int(match.group(1))] * int(match.group(2) or 1))
    return counts


def expand_hostlist(hostlist: str) -> list[str]:
    """Expands a SLURM hostlist expression into host names, in order.

    Handles comma-separated items, bracketed ranges and lists with zero padding, and several
    bracket groups in one name.

    Example:

        >>> expand_hostlist("node[01-03,07],gpu-a[1-2]")
        ['node01', 'node02', 'node03', 'node07', 'gpu-a1', 'gpu-a2']
    """
    hosts: list[str] = []
    for item in _split_top_level(hostlist):
        hosts.extend(_expand_item(item, hostlist))
    return hosts


def first_host(hostlist: str) -> str:
    """The first host of a SLURM hostlist, e.g. `"node[03-04]"` -> `"node03"`."""
    hosts = expand_hostlist(hostlist)
    if not hosts:
        raise ValueError(f"The SLURM hostlist names no host. Received: {hostlist!r}")
    return hosts[0]


def _split_top_level(hostlist: str) -> list[str]:
    items, depth, start = [], 0, 0
    for i, ch in enumerate(hostlist):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"Unbalanced ']' in SLURM hostlist. Received: {hostlist!r}")
        elif ch == "," and depth == 0:
            items.append(hostlist[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f"Unbalanced '[' in SLURM hostlist. Received: {hostlist!r}")
    items.append(hostlist[start:])
    return [item.strip() for item in items if item.strip()]


def _expand_item(item: str, whole: str) -> list[str]:
    open_at = item.find("[")
    if open_at < 0:
        return [item]
    close_at = item.index("]", open_at)
    head, body, tail = item[:open_at], item[open_at + 1 : close_at], item[close_at + 1 :]
    suffixes = _expand_item(tail, whole)
    return [head + value + suffix for value in _expand_range(body, whole) for suffix in suffixes]


def _expand_range(body: str, whole: str) -> list[str]:
    values: list[str] = []
    for part in body.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"Bad range {part!r} in SLURM hostlist. Received: {whole!r}")
        if not sep:
            values.append(lo)
            continue
        if int(hi) < int(lo):
            raise ValueError(f"Descending range {part!r} in SLURM hostlist. Received: {whole!r}")
        width = len(lo)  # "01-10" keeps two digits; "1-10" does not pad
        values.extend(str(n).zfill(width) for n in range(int(lo), int(hi) + 1))
    return values
