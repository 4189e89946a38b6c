"""Run a function on N local workers from a notebook or a Python session.

``launch(train, num_workers=4)`` starts four fresh Python processes (spawned, never forked, so
it is safe after CUDA was initialised in the calling process), each with the environment
``distkeras-launch`` would give it, calls ``train()`` in every one, and returns rank 0's
result. Inside the function ``fit`` trains on all workers, exactly as under the launcher.

Fail fast, as the launcher does: the first worker that raises, exits non-zero or is killed
makes ``launch`` stop the others (SIGTERM, then SIGKILL) and raise :class:`WorkerError`
naming that rank, with its traceback. No worker outlives the call, nor the calling process.

Functions defined in ``__main__`` or a notebook cell travel by value (cloudpickle); functions
of importable modules travel by reference and are imported again in each worker.

Example:
    >>> import distkeras
    >>> def train(epochs):
    ...     model = build_model()
    ...     model.fit(x, y, batch_size=64, epochs=epochs)
    ...     return model.get_weights()
    >>> weights = distkeras.distributed.launch(train, 3, num_workers=2)
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import linecache
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distkeras.distributed import env

ENV_LAUNCH_DIR = "DISTKERAS_LAUNCH_DIR"  # where a worker finds its function and leaves results
ENV_LAUNCH_PARENT = "DISTKERAS_LAUNCH_PARENT"  # the calling process: workers end when it does
GRACE_PERIOD_S = 3.0  # between SIGTERM and SIGKILL when stopping the other workers
POLL_S = 0.05
SETTLE_S = 0.3  # after a first failure, to see which of several near-simultaneous came first
TAIL_LINES = 20
# A peer failing makes the others fail in a collective; those are consequences, not causes.
_SECONDARY = ("CollectiveError", "CollectiveTimeoutError")
_BOOT = "from distkeras.distributed.launch import _worker_main; _worker_main()"
_STALE = (
    env.ENV_RANK,
    env.ENV_WORLD_SIZE,
    env.ENV_LOCAL_RANK,
    env.ENV_LOCAL_WORLD_SIZE,
    env.ENV_MASTER_ADDR,
    env.ENV_MASTER_PORT,
    env.ENV_LAUNCHER,
    env.ENV_BACKEND,
    env.OMPI_RANK,
    env.OMPI_SIZE,
    env.PMI_RANK,
    env.PMI_SIZE,
    "TORCHELASTIC_RESTART_COUNT",
    "GROUP_RANK",
)


class WorkerError(RuntimeError):
    """A worker of :func:`launch` failed; the message names its rank and shows its traceback.

    Attributes:
        rank: the failed worker's rank (-1: mpiexec failed before naming one).
        exitcode: its exit code (negative: killed by that signal), or None if unknown.
        worker_traceback: the traceback text printed in the worker, or None when it died
            without one (killed by a signal).
    """

    def __init__(
        self,
        rank: int,
        message: str,
        worker_traceback: str | None = None,
        exitcode: int | None = None,
    ):
        # rank -1: mpiexec itself failed before any worker could say which one.
        text = f"Worker rank {rank} {message}" if rank >= 0 else f"mpiexec {message}"
        if worker_traceback:
            text += f"\n\nTraceback of rank {rank} (most recent call last is at the end):\n"
            text += worker_traceback.rstrip()
        super().__init__(text)
        self.rank = rank
        self.exitcode = exitcode
        self.worker_traceback = worker_traceback


def launch(
    function: Callable[..., Any],
    *args: Any,
    num_workers: int = 4,
    backend: str | None = None,
) -> Any:
    """Calls ``function(*args)`` on ``num_workers`` new local worker processes.

    Args:
        function: What every worker runs; it may call ``fit`` (which then trains on all
            workers). It and its arguments must be picklable (cloudpickle: lambdas and
            functions of ``__main__`` or a notebook are).
        *args: Passed to ``function`` in every worker.
        num_workers: Number of worker processes.
        backend: "torch" (gloo on CPU, NCCL on GPUs), "mpi" (workers under mpiexec), or
            None/"auto": what ``distkeras-launch`` picks (NCCL on GPUs, else MPI when mpi4py
            and mpiexec are installed, else gloo).

    Returns:
        What ``function`` returned on rank 0.

    Raises:
        WorkerError: A worker raised, exited or was killed; names the first rank that failed
            and carries its traceback (the worker's exception is its ``__cause__`` when it
            could be pickled). The other workers have been stopped.
        ValueError: A bad ``num_workers`` or ``backend``.

    Example:
        >>> def where():
        ...     return distkeras.distributed.world_size()
        >>> distkeras.distributed.launch(where, num_workers=2)
        2
    """
    if not callable(function):
        raise TypeError(f"function must be callable. Received: function={function!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be an integer >= 1. Received: {num_workers!r}")
    chosen = _resolve_backend(backend)
    workdir = Path(tempfile.mkdtemp(prefix="distkeras-launch-"))
    try:
        _write_payload(workdir, function, args)
        group = _Group(workdir, num_workers, chosen)
        try:
            group.start()
            group.supervise()
        finally:
            group.stop()
        return _read(workdir / "result_0.pkl")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _resolve_backend(backend: str | None) -> str:
    if backend not in (None, "auto", "torch", "mpi"):
        raise ValueError(
            f'backend must be None, "auto", "torch" or "mpi". Received: backend={backend!r}'
        )
    if backend == "mpi" and _find_mpiexec() is None:
        raise RuntimeError(
            'backend="mpi" needs mpiexec (none on PATH or beside the interpreter) and mpi4py: '
            "pip install 'distkeras[mpi]'"
        )
    if backend in ("torch", "mpi"):
        return backend
    from distkeras import backend as backend_module

    if backend_module.get_device().type == "cuda":
        return "torch"
    has_mpi4py = importlib.util.find_spec("mpi4py") is not None
    return "mpi" if has_mpi4py and _find_mpiexec() is not None else "torch"


def _find_mpiexec() -> str | None:
    # pip's mpich puts mpiexec beside the interpreter, off PATH unless the venv is activated.
    beside = Path(sys.executable).parent / "mpiexec"
    return shutil.which("mpiexec") or (str(beside) if os.access(beside, os.X_OK) else None)


def _write_payload(workdir: Path, function: Callable, args: tuple) -> None:
    try:
        import cloudpickle
    except ImportError:  # functions of importable modules still travel by reference
        cloudpickle = pickle
    try:
        body = cloudpickle.dumps((function, args))
    except Exception as error:
        raise TypeError(
            f"launch() sends the function and its arguments to the workers by pickling them, "
            f"and {function!r} with its arguments could not be pickled: {error}"
        ) from error
    # The workers set sys.path before unpickling, so functions of the caller's modules import.
    header = pickle.dumps({"sys_path": list(sys.path), "cwd": os.getcwd()})
    (workdir / "payload.pkl").write_bytes(len(header).to_bytes(8, "little") + header + body)


def _read(path: Path) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)


class _Group:
    """The worker processes of one launch() call and their supervision."""

    def __init__(self, workdir: Path, num_workers: int, backend: str):
        self.workdir, self.n, self.backend = workdir, num_workers, backend
        self.procs: dict[int, subprocess.Popen] = {}  # rank -> worker (mpi: -1 -> mpiexec)
        self.tails = {rank: deque(maxlen=TAIL_LINES) for rank in range(-1, num_workers)}
        self.readers: list[threading.Thread] = []

    # ------------------------------------------------------------------------ start
    def _environment(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if k not in _STALE}
        environ.update(
            {
                ENV_LAUNCH_DIR: str(self.workdir),
                ENV_LAUNCH_PARENT: str(os.getpid()),
                env.ENV_BACKEND: self.backend,
                "PYTHONUNBUFFERED": "1",
            }
        )
        if "OMP_NUM_THREADS" not in environ:  # n workers share the cores, as the launcher does
            environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.n))
        return environ

    def start(self) -> None:
        environ = self._environment()
        command = [sys.executable, "-c", _BOOT]
        if self.backend == "mpi":
            self._spawn(-1, [_find_mpiexec(), "-n", str(self.n), *command], environ)
            return
        with socket.socket() as sock:
            sock.bind((env.LOOPBACK, 0))
            port = sock.getsockname()[1]
        for rank in range(self.n):
            worker = dict(environ)
            worker.update(
                {
                    env.ENV_RANK: str(rank),
                    env.ENV_LOCAL_RANK: str(rank),
                    env.ENV_WORLD_SIZE: str(self.n),
                    env.ENV_LOCAL_WORLD_SIZE: str(self.n),
                    env.ENV_MASTER_ADDR: env.LOOPBACK,
                    env.ENV_MASTER_PORT: str(port),
                    env.ENV_LAUNCHER: "1",
                }
            )
            self._spawn(rank, command, worker)

    def _spawn(self, rank: int, command: list[str], environ: dict[str, str]) -> None:
        # A session of its own: stopping a worker stops whatever it started too.
        proc = subprocess.Popen(
            command,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[rank] = proc
        reader = threading.Thread(target=self._forward, args=(rank, proc), daemon=True)
        reader.start()
        self.readers.append(reader)

    def _forward(self, rank: int, proc: subprocess.Popen) -> None:
        # A notebook shows sys.stdout, not the process's file descriptor 1: copy lines there.
        prefix = "" if rank < 0 else f"[rank {rank}] "
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace")
            self.tails[rank].append(line)
            with contextlib.suppress(Exception):
                sys.stdout.write(prefix + line)
                sys.stdout.flush()

    # -------------------------------------------------------------------- supervise
    def supervise(self) -> None:
        while True:
            failures = self._failures()
            if failures:
                time.sleep(SETTLE_S)
                raise self._primary(self._failures())
            if all(proc.poll() == 0 for proc in self.procs.values()):
                break
            time.sleep(POLL_S)
        for reader in self.readers:
            reader.join(timeout=5)
        if not (self.workdir / "result_0.pkl").exists():
            raise WorkerError(0, "ended without returning a result.", self._tail(0))

    def _worker_pids(self) -> dict[int, int]:
        pids = {}
        for path in self.workdir.glob("pid_*"):
            with contextlib.suppress(ValueError, OSError):
                pids[int(path.name[4:])] = int(path.read_text())
        return pids

    def _failures(self) -> list[tuple[int, float, bool, WorkerError]]:
        """(rank, when, is a consequence of another failure, error) for each failed rank."""
        found = {}
        for path in self.workdir.glob("error_*.pkl"):
            with contextlib.suppress(OSError, EOFError, pickle.UnpicklingError):
                report = _read(path)
                found[report["rank"]] = (
                    report["time"],
                    report["type"] in _SECONDARY,
                    _error_from(report),
                )
        now = time.time()
        if self.backend == "torch":
            for rank, proc in self.procs.items():
                code = proc.poll()
                finished = (self.workdir / f"done_{rank}").exists()
                if code is not None and rank not in found and (code != 0 or not finished):
                    found[rank] = (now, False, self._died(rank, code))
            return [(rank, *info) for rank, info in found.items()]
        # Under mpiexec the workers are not our children: watch their pids.
        for rank, pid in self._worker_pids().items():
            if (
                rank not in found
                and not _alive(pid)
                and not (self.workdir / f"done_{rank}").exists()
            ):
                found[rank] = (now, False, self._died(rank, None))
        code = self.procs[-1].poll()
        if code not in (None, 0) and not found:
            tail = "".join(self.tails[-1]) or None
            found[-1] = (now, False, WorkerError(-1, f"exited with code {code}.", tail))
        return [(rank, *info) for rank, info in found.items()]

    def _died(self, rank: int, code: int | None) -> WorkerError:
        if code is None:
            how = "ended without reporting an error (killed by a signal?)"
        elif code < 0:
            how = f"was killed by {_signal_name(-code)}"
        elif code == 0:
            how = "exited with code 0 before its function returned"
        else:
            how = f"exited with code {code}"
        tail = self._tail(rank)
        message = f"{how}." + (f" Its last output:\n{tail}" if tail else "")
        return WorkerError(rank, message, exitcode=code)

    def _tail(self, rank: int) -> str:
        return "".join(self.tails.get(rank if self.backend == "torch" else -1, ())).rstrip()

    @staticmethod
    def _primary(failures: list) -> WorkerError:
        # The cause: the earliest failure that is not a collective failing because of it.
        failures.sort(key=lambda item: (item[2], item[1]))
        return failures[0][3]

    # ------------------------------------------------------------------------- stop
    def stop(self) -> None:
        """Ends every worker: SIGTERM, then SIGKILL after the grace period."""
        pids = list(self._worker_pids().values())
        alive = [proc for proc in self.procs.values() if proc.poll() is None]
        for proc in alive:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_PERIOD_S
        while time.monotonic() < deadline and (
            any(proc.poll() is None for proc in alive) or any(_alive(pid) for pid in pids)
        ):
            time.sleep(POLL_S)
        for proc in self.procs.values():
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for reader in self.readers:
            reader.join(timeout=2)


def _error_from(report: dict) -> WorkerError:
    rank, kind = report["rank"], report["type"]
    if kind == "SystemExit":
        message = f"exited with code {report['exitcode']} (sys.exit)."
    else:
        message = f"raised {kind}: {report['message']}"
    error = WorkerError(rank, message, _with_sources(report["traceback"]), report.get("exitcode"))
    if report.get("exception") is not None:
        with contextlib.suppress(Exception):
            error.__cause__ = pickle.loads(report["exception"])
    return error


_DYNAMIC_FRAME = re.compile(r'^(\s*)File "<dynamic-code>", line (\d+), in (\w+)$')


def _with_sources(text: str) -> str:
    """Puts the caller's file and source line back into frames of functions sent by value.

    cloudpickle names their file "<dynamic-code>"; the caller's ``__main__`` (a script, or
    the notebook, whose cells IPython keeps in linecache) still has them by name.
    """
    main = sys.modules.get("__main__")
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        match = _DYNAMIC_FRAME.match(line)
        code = getattr(getattr(main, match.group(3), None), "__code__", None) if match else None
        if code is None:
            out.append(line)
            continue
        indent, number = match.group(1), int(match.group(2))
        out.append(f'{indent}File "{code.co_filename}", line {number}, in {match.group(3)}')
        source = linecache.getline(code.co_filename, number).strip()
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if source and following != source:
            out.append(f"{indent}  {source}")
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path("/proc").is_dir()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# ---------------------------------------------------------------------- worker side
def _worker_main() -> None:
    """Entry point of a worker process (``python -c`` with ``_BOOT``)."""
    workdir = Path(os.environ[ENV_LAUNCH_DIR])
    _end_with_parent(int(os.environ[ENV_LAUNCH_PARENT]))
    rank = env.detect().rank
    _atomic_write(workdir / f"pid_{rank}", str(os.getpid()).encode())
    try:
        blob = (workdir / "payload.pkl").read_bytes()
        size = int.from_bytes(blob[:8], "little")
        header = pickle.loads(blob[8 : 8 + size])
        sys.path[:] = header["sys_path"]
        with contextlib.suppress(OSError):
            os.chdir(header["cwd"])
        function, args = pickle.loads(blob[8 + size :])
        result = function(*args)
        if rank == 0:
            _atomic_write(workdir / "result_0.pkl", _dumps(result))
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if code != 0:
            _report(workdir, rank, stop, code)
        if rank == 0 and not (workdir / "result_0.pkl").exists():
            _atomic_write(workdir / "result_0.pkl", pickle.dumps(None))
    except BaseException as error:  # noqa: BLE001 - every failure goes back to the caller
        _report(workdir, rank, error, 1)
    _atomic_write(workdir / f"done_{rank}", b"")


def _report(workdir: Path, rank: int, error: BaseException, code: int) -> None:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:  # the caller may not be able to unpickle it; then it gets the text alone
        exception = pickle.dumps(error)
    except Exception:
        exception = None
    report = {
        "rank": rank,
        "type": type(error).__name__,
        "message": str(error),
        "traceback": text,
        "exception": exception,
        "exitcode": code,
        "time": time.time(),
    }
    sys.stderr.write(text)
    _atomic_write(workdir / f"error_{rank}.pkl", pickle.dumps(report))
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave now: a normal exit would wait in MPI_Finalize or a process-group teardown for
    # peers that are waiting for us.
    os._exit(code)


def _dumps(result: Any) -> bytes:
    try:
        import cloudpickle

        return cloudpickle.dumps(result)
    except ImportError:
        return pickle.dumps(result)


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _end_with_parent(parent: int) -> None:
    """Makes this worker end when the calling process does, however that ends."""
    with contextlib.suppress(Exception):  # Linux: the kernel kills us when our parent dies
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG

    # Under mpiexec our parent is MPI's proxy, not the caller: watch the caller itself.
    def watch() -> None:
        while _alive(parent):
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="distkeras-parent-watch").start()
