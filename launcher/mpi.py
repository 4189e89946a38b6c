"""`--backend mpi`: one `mpiexec -n N` runs the node's workers, each behind a small relay.

mpiexec merges every rank's output into one stream and (MPICH's Hydra) waits for all ranks
even when one has failed. So mpiexec does not start the worker directly but
`python -m distkeras_launcher.mpi -- <worker command>`, a relay that

* reads its rank from the MPI environment and sets RANK, LOCAL_RANK, WORLD_SIZE and
  LOCAL_WORLD_SIZE exactly as the local launcher does;
* runs the worker as its child (which inherits the PMI connection, so `MPI_Init` works) and
  writes the worker's lines prefixed with `[rank N] `;
* forwards signals to the worker, and dies with its parent (PR_SET_PDEATHSIG);
* when the worker fails, writes an exit-marker line after its last output.

The launcher attributes lines to ranks by those prefixes (rank-prefixed terminal output, per
rank log files, failure tails) and stops mpiexec at the first exit marker.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._envmod import env as _env
from .local import (
    PASS_THROUGH_SIGNALS,
    TERMINATING_SIGNALS,
    Child,
    GroupResult,
    Reaper,
    Supervisor,
    child_preexec,
    die_with_parent,
    shell_exit_code,
    spawn_with_pipes,
)
from .streams import OutputPump, exit_marker

INSTALL_HINT = "pip install distkeras[mpi]"


def find_mpiexec(explicit: str | None = None, path: str | None = None) -> str | None:
    """Locates mpiexec: `explicit`, then PATH, then the one the `mpich` pip package ships.

    Args:
        explicit: A path or command name given with `--mpiexec`.
        path: The search path; `os.environ["PATH"]` when None.

    Returns:
        An executable path, or None when there is none.
    """
    if explicit:
        return shutil.which(explicit, path=path)
    on_path = shutil.which("mpiexec", path=path)
    beside = _mpiexec_beside_python()
    if on_path and beside and Path(on_path).parent.name == "shims":
        # A pyenv shim re-resolves the same binary through bash on every call (~0.3 s).
        return beside
    return on_path or beside or _mpiexec_from_mpich_package()


def _mpiexec_beside_python() -> str | None:
    # `pip install mpich` puts mpiexec in the environment's bin directory, which is not on
    # PATH when a virtual environment's python is run without activating it.
    executable = Path(sys.executable)
    for folder in (executable.parent, executable.resolve().parent):
        candidate = folder / "mpiexec"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _mpiexec_from_mpich_package() -> str | None:
    import importlib.metadata  # only on this rare path: it costs ~10 ms

    try:
        files = importlib.metadata.files("mpich") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "mpiexec":
            located = Path(file.locate()).resolve()
            if located.is_file() and os.access(located, os.X_OK):
                return str(located)
    return None


def mpi4py_available() -> bool:
    """True when mpi4py can be imported (checked without importing it)."""
    return importlib.util.find_spec("mpi4py") is not None


def require_mpi(explicit: str | None = None) -> str:
    """Returns the mpiexec to use, or raises an error that says what to install."""
    mpiexec = find_mpiexec(explicit)
    if mpiexec is None:
        where = f"--mpiexec {explicit!r} is not an executable" if explicit else "no mpiexec"
        raise RuntimeError(
            f"--backend mpi needs an MPI launcher, but {where} was found (looked on PATH, next "
            f"to {sys.executable} and in the mpich package). Install one: {INSTALL_HINT}"
        )
    if not mpi4py_available():
        raise RuntimeError(f"--backend mpi needs the mpi4py package. Install it: {INSTALL_HINT}")
    return mpiexec


def _is_open_mpi(mpiexec: str) -> bool:
    try:
        out = subprocess.run(
            [mpiexec, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    text = out.stdout + out.stderr
    return "Open MPI" in text or "OpenRTE" in text


def mpiexec_command(mpiexec: str, nproc: int, worker_argv: Sequence[str]) -> list[str]:
    """The mpiexec command line that starts `nproc` relays running `worker_argv`."""
    command = [mpiexec, "-n", str(nproc)]
    if _is_open_mpi(mpiexec):
        # Open MPI refuses more ranks than cores, and refuses root, unless told otherwise.
        command.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-run-as-root")
    # The relay by the name this package was imported under (distkeras_launcher once
    # installed; launcher when run from a source checkout).
    return [*command, sys.executable, "-m", f"{__package__}.mpi", "--", *worker_argv]


def run_mpi(
    mpiexec: str,
    nproc: int,
    worker_argv: Sequence[str],
    env: Mapping[str, str],
    grace_period: float,
    log_dir: str | None,
) -> GroupResult:
    """Runs the workers under mpiexec with rank prefixes and fail-fast supervision.

    Args:
        mpiexec: Path of mpiexec (see `require_mpi`).
        nproc: Workers to start.
        worker_argv: The worker command, e.g. `[sys.executable, "train.py"]`.
        env: The environment for mpiexec (and through it the relays and workers).
        grace_period: Seconds between SIGTERM and SIGKILL when stopping the job.
        log_dir: Directory for per-rank log files, or None.

    Returns:
        How the group ended (its `code` is the launcher's exit code).
    """
    command = mpiexec_command(mpiexec, nproc, worker_argv)
    pump = OutputPump(log_dir=log_dir, prefixed_input=True)
    supervisor = Supervisor(pump, grace_period)
    pump.on_exit = supervisor.report_exit
    pump.on_blame = supervisor.report_blame
    supervisor.install_signal_handlers()
    reaper = Reaper()
    try:
        proc = spawn_with_pipes(pump, None, command, env, child_preexec(new_group=True))
        reaper.watch(proc.pid)
        # Polite signals go to mpiexec alone: it forwards them to every rank.
        supervisor.children.append(Child(proc, None, "mpiexec", signal_group=False))
        pump.start()
        code = supervisor.run()
    except BaseException:
        supervisor.kill_all()
        raise
    finally:
        pump.join(timeout=2.0)
        reaper.done()
        supervisor.restore_signal_handlers()
    return code


def _kill_rest_of_group() -> None:
    """SIGKILLs every other process of this relay's process group (Linux /proc)."""
    me, group = os.getpid(), os.getpgrp()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.getpgid(int(entry)) == group:
                os.kill(int(entry), signal.SIGKILL)
        except OSError:
            continue


def relay_main(argv: Sequence[str]) -> int:
    """The per-rank relay that mpiexec runs (see the module docstring)."""
    argv = list(argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        os.write(
            2,
            b"usage: python -m distkeras_launcher.mpi -- <worker command>\n",
        )
        return 2
    die_with_parent(os.getppid())  # this relay dies with mpiexec's proxy
    if os.getpgrp() != os.getpid():
        # Hydra already gives every rank its own session; make sure of it, so that cleaning
        # up after the worker never reaches mpiexec or the other ranks.
        os.setpgid(0, 0)
    info = _env.detect()
    if info.launcher not in ("openmpi", "mpich"):
        os.write(2, b"distkeras_launcher.mpi: not started by mpiexec (no MPI rank variables).\n")
        return 2
    child_env = dict(os.environ)
    child_env.update(
        {
            _env.ENV_RANK: str(info.rank),
            _env.ENV_WORLD_SIZE: str(info.world_size),
            _env.ENV_LOCAL_RANK: str(info.local_rank),
            _env.ENV_LOCAL_WORLD_SIZE: str(info.local_world_size),
        }
    )
    proc: list[subprocess.Popen] = []
    pending: list[int] = []

    def forward(signum: int, frame: object) -> None:
        if proc:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc[0].pid, signum)
        else:
            pending.append(signum)

    for sig in TERMINATING_SIGNALS + PASS_THROUGH_SIGNALS:
        signal.signal(sig, forward)
    pump = OutputPump()
    # close_fds=False: the worker must inherit the PMI socket (PMI_FD) to join the MPI job.
    proc.append(
        spawn_with_pipes(pump, info.rank, argv, child_env, child_preexec(False), close_fds=False)
    )
    for sig in pending:
        forward(sig, None)
    pump.start()
    returncode = proc[0].wait()
    # Whatever the worker started shares our process group and may hold its pipes open.
    _kill_rest_of_group()
    pump.join(timeout=5.0)
    if returncode != 0:
        # After a pump timeout (a grandchild holds the pipe) a line may be unfinished.
        start = b"" if pump.drained() else b"\n"
        os.write(2, start + exit_marker(info.rank, returncode))
    return shell_exit_code(returncode)


if __name__ == "__main__":
    sys.exit(relay_main(sys.argv[1:]))
