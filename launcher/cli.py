"""distkeras-launch: start N distkeras workers on this node and supervise them.

    distkeras-launch [-n N] [--backend auto|torch|mpi] [--nnodes M --node-rank R
                     --master-addr A --master-port P] [--log-dir DIR] [--grace-period S]
                     [--max-restarts K] [-m] script.py [script args...]

Every worker is `python script.py args` (the same interpreter as the launcher) with these
variables set: RANK (global), LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
MASTER_PORT, DISTKERAS_LAUNCHER=1, DISTKERAS_BACKEND (torch or mpi), PYTHONUNBUFFERED=1, and
OMP_NUM_THREADS = cores / N unless you set it. `distkeras.fit` reads them and initialises the
process group by itself; the same script also runs unchanged as `python train.py`.

One process (no launcher needed; useful for debugging):

    python examples/train.py

One node, 4 workers (CPU: MPI when mpi4py and mpiexec are installed, else gloo; GPU: NCCL):

    distkeras-launch -n 4 examples/train.py --epochs 3

Two nodes with 8 workers each (run on every node; node 0's address, a port open on it):

    node0$ distkeras-launch -n 8 --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 \
               --master-port 29500 examples/train.py
    node1$ distkeras-launch -n 8 --nnodes 2 --node-rank 1 --master-addr 10.0.0.1 \
               --master-port 29500 examples/train.py

    RANK = node_rank * N + local_rank and WORLD_SIZE = nnodes * N.

MPI on one node (mpiexec from PATH, else the one `pip install distkeras[mpi]` ships):

    distkeras-launch -n 4 --backend mpi examples/train.py

    For several nodes start the workers with mpiexec itself; they detect it:
    mpiexec -n 16 -ppn 8 -hosts node0,node1 python examples/train.py

SLURM (see scripts/slurm/job.sbatch). Either let srun start one task per worker, which needs
no launcher at all:

    srun --ntasks-per-node=8 python examples/train.py

or start one launcher per node; it reads the allocation (SLURM_NNODES, SLURM_NODEID, master =
first host of the node list, port = 10000 + job id % 20000) when --nnodes is not given:

    srun --ntasks-per-node=1 distkeras-launch -n 8 examples/train.py

Output lines are prefixed with `[rank N] `; `--log-dir DIR` also writes DIR/rank_<N>.log.
If a worker fails (exception, non-zero exit, killed by a signal), the launcher stops the
others (SIGTERM, then SIGKILL after --grace-period seconds), prints the failed rank with the
end of its output and exits with that worker's exit code (128 + N for signal N). SIGINT,
SIGTERM and SIGHUP are forwarded to every worker (press Ctrl-C twice to kill them at once);
SIGUSR1 and SIGUSR2 are forwarded too. Workers never outlive the launcher, even when it is
killed with SIGKILL.

Faults and preemption (leave a job running overnight):

    distkeras-launch -n 4 --max-restarts 3 train.py

With `--max-restarts K`, a worker that fails (non-zero exit, killed by a signal) makes the
launcher stop the others as above and then start the whole group again, up to K times, with
DISTKERAS_RESTART_COUNT=k (the script reads it as `distkeras.distributed.restart_count()`;
a count inherited from the environment, e.g. a requeued SLURM job's, is added) and a fresh
free port (the same --master-port on several nodes: each node's launcher restarts its own
workers and they meet again there). A `BackupAndRestore` callback makes the restarted `fit`
continue from its last backup. The launcher exits with the last group's code.

Exit code 75 means "preempted, requeue me". During `fit`, SIGTERM or SIGUSR1 (SLURM's
`--signal`, which the launcher forwards; SIGUSR1 does not stop anything else) makes every rank
finish the current step, rank 0 write its `BackupAndRestore` state, and every worker exit 75.
That is not a failure: no restart, no failure report; the launcher waits for all workers (up to
--grace-period seconds, then SIGKILL) and exits 75 itself, so a batch script can requeue the
job (scripts/slurm/job.sbatch) and the rerun resumes at that step. Give --grace-period enough
time to write a checkpoint when the launcher is the one that receives SIGTERM. All of this
works the same with --backend mpi: each rank's relay reports its exit code to the launcher.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import mpi, slurm
from ._envmod import env as _env
from .local import (
    PASS_THROUGH_SIGNALS,
    REQUEUE_EXIT_CODE,
    TERMINATING_SIGNALS,
    GroupResult,
    _say,
    run_local,
)

BACKEND_CHOICES = ("auto", "torch", "mpi")
DEFAULT_MULTINODE_PORT = 29500  # like torchrun: a fixed port every node can agree on
DEFAULT_GRACE_PERIOD = 10.0


@dataclasses.dataclass(frozen=True)
class LaunchConfig:
    """Everything `launch()` needs, with defaults resolved (the backend is never "auto").

    Attributes:
        script: Path of the training script, or a module name when `module` is True.
        script_args: Arguments passed to the script.
        nproc_per_node: Workers started on this node.
        backend: "torch" or "mpi".
        nnodes: Nodes taking part in the job.
        node_rank: This node's index, `0 <= node_rank < nnodes`.
        master_addr: Host where rank 0 listens.
        master_port: Its port; None picks a free port at launch (single node only).
        log_dir: Directory for per-rank log files, or None.
        module: Run the script as `python -m script`.
        grace_period: Seconds between SIGTERM and SIGKILL when stopping workers.
        mpiexec: Path of mpiexec when backend is "mpi".
        slurm_job_id: The SLURM job whose allocation was read, or None.
        max_restarts: How many times a failed group of workers is started again.

    Example:

        >>> LaunchConfig(script="train.py", nproc_per_node=2, nnodes=2, node_rank=1,
        ...              master_addr="10.0.0.1", master_port=29500).global_rank(0)
        2
    """

    script: str
    script_args: tuple[str, ...] = ()
    nproc_per_node: int = 1
    backend: str = "torch"
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = _env.LOOPBACK
    master_port: int | None = None
    log_dir: str | None = None
    module: bool = False
    grace_period: float = DEFAULT_GRACE_PERIOD
    mpiexec: str | None = None
    slurm_job_id: str | None = None
    max_restarts: int = 0

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node

    def global_rank(self, local_rank: int) -> int:
        return self.node_rank * self.nproc_per_node + local_rank

    def worker_argv(self) -> list[str]:
        target = ["-m", self.script] if self.module else [self.script]
        return [sys.executable, *target, *self.script_args]

    def get_config(self) -> dict:
        return dataclasses.asdict(self)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distkeras-launch",
        description="Start and supervise distkeras workers on this node.",
        epilog="Full manual: python -c 'import distkeras_launcher.cli as m; help(m)'",
        allow_abbrev=False,
    )
    parser.add_argument(
        "-n",
        "--nproc-per-node",
        "--nproc_per_node",
        type=_positive_int,
        default=1,
        metavar="N",
        help="workers on this node (default 1)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="auto",
        help="auto: NCCL on GPUs, else MPI if installed, else gloo",
    )
    parser.add_argument(
        "--nnodes",
        type=_positive_int,
        default=None,
        metavar="M",
        help="nodes in the job (default 1, or the SLURM allocation)",
    )
    parser.add_argument(
        "--node-rank",
        "--node_rank",
        type=int,
        default=None,
        metavar="R",
        help="index of this node, 0..M-1",
    )
    parser.add_argument(
        "--master-addr",
        "--master_addr",
        default=None,
        metavar="A",
        help="address of node 0 (default 127.0.0.1 on one node)",
    )
    parser.add_argument(
        "--master-port",
        "--master_port",
        type=int,
        default=None,
        metavar="P",
        help="rendezvous port (default: a free one on one node, "
        f"{DEFAULT_MULTINODE_PORT} on several)",
    )
    parser.add_argument(
        "--log-dir",
        default=None,
        metavar="DIR",
        help="also write each rank's output to DIR/rank_<N>.log",
    )
    parser.add_argument(
        "--grace-period",
        type=float,
        default=DEFAULT_GRACE_PERIOD,
        metavar="S",
        help="seconds from SIGTERM to SIGKILL when stopping "
        f"workers (default {DEFAULT_GRACE_PERIOD:g})",
    )
    parser.add_argument(
        "--max-restarts",
        "--max_restarts",
        type=_non_negative_int,
        default=0,
        metavar="K",
        help="start all workers again after a failure, up to K times (default 0); "
        "exit code 75 (preempted) is no failure",
    )
    parser.add_argument(
        "--mpiexec", default=None, metavar="PATH", help="the mpiexec to use with --backend mpi"
    )
    parser.add_argument(
        "-m",
        "--module",
        action="store_true",
        help="treat the script as a module name: python -m script",
    )
    parser.add_argument("script", help="the training script (or module with -m)")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments for the script")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1. Received: {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0. Received: {value}")
    return value


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> LaunchConfig:
    """Parses the command line into a `LaunchConfig`, reading SLURM and the machine.

    Args:
        argv: The arguments after the program name; `sys.argv[1:]` when None.
        environ: The environment; `os.environ` when None.

    Raises:
        SystemExit: Malformed arguments (argparse prints the usage).
        ValueError: Inconsistent arguments, naming them.
        RuntimeError: `--backend mpi` without mpiexec or mpi4py (says what to install).
    """
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    nnodes, node_rank = args.nnodes, args.node_rank
    master_addr, master_port, job_id = args.master_addr, args.master_port, None
    if nnodes is None:
        if node_rank is not None:
            raise ValueError(f"--node-rank needs --nnodes. Received: --node-rank={node_rank}")
        allocation = slurm.read_allocation(environ)
        nnodes, node_rank = 1, 0
        if allocation is not None and allocation.nnodes > 1:
            nnodes, node_rank = allocation.nnodes, allocation.node_rank
            master_addr = master_addr or allocation.master_addr
            master_port = master_port or allocation.master_port
            job_id = allocation.job_id
    node_rank = 0 if node_rank is None else node_rank
    if not 0 <= node_rank < nnodes:
        raise ValueError(
            f"--node-rank must be in [0, --nnodes={nnodes}). Received: --node-rank={node_rank}"
        )
    if nnodes > 1 and not master_addr:
        raise ValueError(
            f"--master-addr (the address of node 0) is required with --nnodes={nnodes}."
        )
    if nnodes > 1 and master_port is None:
        master_port = DEFAULT_MULTINODE_PORT
    if master_port is not None and not 0 < master_port < 65536:
        raise ValueError(f"--master-port must be in [1, 65535]. Received: {master_port}")
    if args.grace_period < 0:
        raise ValueError(f"--grace-period must be >= 0. Received: {args.grace_period}")
    if not args.module and not Path(args.script).is_file():
        raise ValueError(f"The training script does not exist. Received: {args.script!r}")

    backend = resolve_backend(
        args.backend,
        nproc_per_node=args.nproc_per_node,
        nnodes=nnodes,
        environ=environ,
        mpiexec=args.mpiexec,
    )
    return LaunchConfig(
        script=args.script,
        script_args=tuple(args.script_args),
        nproc_per_node=args.nproc_per_node,
        backend=backend,
        nnodes=nnodes,
        node_rank=node_rank,
        master_addr=master_addr or _env.LOOPBACK,
        master_port=master_port,
        log_dir=args.log_dir,
        module=args.module,
        grace_period=args.grace_period,
        mpiexec=mpi.require_mpi(args.mpiexec) if backend == "mpi" else None,
        slurm_job_id=job_id,
        max_restarts=args.max_restarts,
    )


def resolve_backend(
    requested: str,
    nproc_per_node: int,
    nnodes: int,
    environ: Mapping[str, str],
    mpiexec: str | None = None,
) -> str:
    """Turns `--backend` into "torch" or "mpi".

    "auto" picks torch (NCCL) when GPUs are visible; on CPU it picks MPI when mpi4py and an
    mpiexec are installed (its all-reduce measured 6x faster than gloo here), else torch
    (gloo). A single worker, or several nodes, always get torch: one worker communicates with
    nobody, and one launcher's mpiexec cannot span nodes.
    """
    if requested not in BACKEND_CHOICES:
        raise ValueError(f"--backend must be one of {BACKEND_CHOICES}. Received: {requested!r}")
    if requested == "mpi" and nnodes > 1:
        raise ValueError(
            "--backend mpi runs one mpiexec per launcher and so covers one node. For several "
            "nodes start the workers with mpiexec directly (they detect it), e.g. "
            "mpiexec -n 16 -ppn 8 -hosts node0,node1 python train.py, or use --backend torch."
        )
    if requested != "auto":
        return requested
    if nnodes > 1 or nproc_per_node == 1 or visible_gpu_count(environ) > 0:
        return "torch"
    if mpi.mpi4py_available() and mpi.find_mpiexec(mpiexec, environ.get("PATH")) is not None:
        return "mpi"
    return "torch"


def visible_gpu_count(
    environ: Mapping[str, str],
    driver_dir: Path = Path("/proc/driver/nvidia/gpus"),
    dev_dir: Path = Path("/dev"),
) -> int:
    """Counts the NVIDIA GPUs this process could use, without importing torch."""
    try:
        if driver_dir.is_dir():
            physical = sum(1 for _ in driver_dir.iterdir())
        else:
            physical = sum(1 for p in dev_dir.glob("nvidia[0-9]*") if p.name[6:].isdigit())
    except OSError:
        physical = 0
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if physical == 0 or visible is None:
        return physical
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    if not entries or entries[0] in ("-1", "NoDevFiles"):
        return 0
    return min(len(entries), physical)


def worker_environment(
    config: LaunchConfig, environ: Mapping[str, str], master_port: int, local_rank: int | None
) -> dict[str, str]:
    """The complete environment of one worker (of mpiexec when `local_rank` is None)."""
    env = dict(environ)
    for name in (
        _env.ENV_RANK,
        _env.ENV_WORLD_SIZE,
        _env.ENV_LOCAL_RANK,
        _env.ENV_LOCAL_WORLD_SIZE,
    ):
        env.pop(name, None)  # stale values from an outer launcher; mpi relays set their own
    env.update(
        {
            _env.ENV_MASTER_ADDR: config.master_addr,
            _env.ENV_MASTER_PORT: str(master_port),
            _env.ENV_LAUNCHER: "1",
            _env.ENV_BACKEND: config.backend,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if config.nproc_per_node > 1 and "OMP_NUM_THREADS" not in environ:
        # N workers each spawning one thread per core would oversubscribe the node badly.
        env["OMP_NUM_THREADS"] = str(max(1, _cpu_count() // config.nproc_per_node))
    if local_rank is not None:
        env.update(
            {
                _env.ENV_RANK: str(config.global_rank(local_rank)),
                _env.ENV_WORLD_SIZE: str(config.world_size),
                _env.ENV_LOCAL_RANK: str(local_rank),
                _env.ENV_LOCAL_WORLD_SIZE: str(config.nproc_per_node),
            }
        )
    return env


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def reserve_port() -> socket.socket:
    """Binds a socket to a free port and returns it; close it just before the workers start.

    Holding the port bound until then keeps other programs from taking it meanwhile; the
    socket never listens, so closing it frees the port at once for rank 0's store.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("", 0))
    return sock


def launch(config: LaunchConfig, environ: Mapping[str, str] | None = None) -> int:
    """Starts the workers of this node, supervises them and returns the exit code.

    A failed group is started again, whole, up to `config.max_restarts` times.
    """
    environ = os.environ if environ is None else environ
    inherited = _inherited_restarts(environ)
    # Between two groups no supervisor listens: note a signal and stop there (SIGUSR1, a
    # checkpoint request with no workers running, asks for a requeue).
    arrived: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda s, f: arrived.append(s))
        for sig in TERMINATING_SIGNALS + PASS_THROUGH_SIGNALS
    }
    try:
        attempt = 0
        while True:
            if arrived:
                return _code_for_signal(arrived[0])
            count = {_env.ENV_RESTART_COUNT: str(inherited + attempt)}
            result = _launch_group(config, {**environ, **count})
            if not result.restartable:
                return result.code
            if attempt == config.max_restarts:
                if config.max_restarts:
                    _say(
                        f"{result.failed} failed and all {config.max_restarts} restart(s) are "
                        "used up; giving up."
                    )
                return result.code
            attempt += 1
            _say(
                f"{result.failed} failed; restarting all workers "
                f"(restart {attempt}/{config.max_restarts})."
            )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _code_for_signal(sig: int) -> int:
    return REQUEUE_EXIT_CODE if sig in PASS_THROUGH_SIGNALS else 128 + int(sig)


def _inherited_restarts(environ: Mapping[str, str]) -> int:
    with contextlib.suppress(ValueError):
        return max(0, int(environ.get(_env.ENV_RESTART_COUNT, "0")))
    return 0


def _launch_group(config: LaunchConfig, environ: Mapping[str, str]) -> GroupResult:
    """Starts one group of workers (a fresh free port unless one was given) and supervises it."""
    reserved = reserve_port() if config.master_port is None else None
    port = reserved.getsockname()[1] if reserved is not None else config.master_port
    try:
        argv = config.worker_argv()
        if config.backend == "mpi":
            env = worker_environment(config, environ, port, local_rank=None)
            _release(reserved)
            return mpi.run_mpi(
                config.mpiexec,
                config.nproc_per_node,
                argv,
                env,
                config.grace_period,
                config.log_dir,
            )
        envs = [
            (config.global_rank(local), worker_environment(config, environ, port, local))
            for local in range(config.nproc_per_node)
        ]
        _release(reserved)
        return run_local(argv, envs, config.grace_period, config.log_dir)
    finally:
        _release(reserved)


def _release(sock: socket.socket | None) -> None:
    if sock is not None:
        sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `distkeras-launch`; returns the process exit code."""
    try:
        config = parse_args(argv)
    except (ValueError, RuntimeError) as error:
        sys.stderr.write(f"distkeras-launch: error: {error}\n")
        return 2
    return launch(config)


if __name__ == "__main__":
    sys.exit(main())
