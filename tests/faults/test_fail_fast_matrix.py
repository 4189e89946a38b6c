"""No failure hangs any launch mode: every cell of {launch mode} x {fault}.

Launch modes: distkeras-launch (default backend: MPI on CPU), --backend torch, --backend mpi,
plain mpiexec, plain torchrun, and a SLURM step (scripts/fake_srun.py: srun's variables, and,
as srun by default, no task is killed when another fails, so the tasks must end by
themselves). Faults, injected by rank 1 at step 2 of a tiny fit
(scripts/fail_fast_job.py): an exception, SIGKILL, sys.exit(3), sys.exit(0) (one rank leaving
fit early is a failure of the job too), and SIGTERM sent to the launcher (distkeras-launch,
mpiexec, torchrun or srun) in the middle of training. The exception and the SIGTERM are also tried
on a model with Dropout that trains through its own train_step, where rank 1 raises inside
the step, between backward() and optimizer.apply(). After fit, an exception in evaluate() and
a SIGKILL in predict() (at their batch 1). In every cell:

* every rank ends within END_S seconds of the fault, and the job with a non-zero exit code;
* the output names the failing rank with its error;
* no process of the job is left (the process table is searched for the cell's marker
  variable, which every process of the job inherits).

The jobs are started a few at a time by a module fixture, so the cells' start-up (two
workers importing torch each) overlaps; each test waits for its own cell.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from distkeras_launcher.mpi import find_mpiexec

from tests.faults import REPO, SCRIPTS, worker_env

# Its cells start together from one module fixture: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("fail_fast_matrix")

JOB = SCRIPTS / "fail_fast_job.py"
MODES = ("launch", "launch-torch", "launch-mpi", "mpiexec", "torchrun", "srun")
FAULTS = ("raise", "kill", "exit3", "exit0", "term")
CUSTOM_STEP_FAULTS = ("raise", "term")  # the faults whose path differs in a user's train_step
AFTER_FIT_FAULTS = ("raise-evaluate", "kill-predict")  # in model.evaluate() / model.predict()
END_S = 10.0  # from the fault to the end of every process of the job
PARALLEL = 4
START_TIMEOUT_S = 90.0


def command(mode: str, folder: Path, fault: str, step: str = "built-in") -> list[str]:
    script = [str(JOB), str(folder), fault, *(["custom"] if step == "custom" else [])]
    # SIGTERM: the ranks save and exit by themselves (75); a rank still alive after the grace
    # period is killed, and the default (10 s) would put that kill at the edge of END_S.
    launch = [sys.executable, "-m", "distkeras_launcher", "-n", "2", "--grace-period", "7"]
    if mode == "launch":
        return [*launch, *script]
    if mode == "launch-torch":
        return [*launch, "--backend", "torch", *script]
    if mode == "launch-mpi":
        return [*launch, "--backend", "mpi", *script]
    if mode == "mpiexec":
        return [find_mpiexec(), "-n", "2", sys.executable, *script]
    if mode == "srun":  # a SLURM step: srun kills no task when another fails
        return [sys.executable, str(SCRIPTS / "fake_srun.py"), "2", sys.executable, *script]
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-port", str(_free_port()), "--monitor-interval", "0.1", *script,
    ]  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cell:
    """One job: started, faulted, watched until it and all its processes are gone."""

    def __init__(
        self, mode: str, fault: str, root: Path, timeout_s: float = 30.0, step: str = "built-in"
    ):
        self.mode, self.fault, self.timeout_s, self.step = mode, fault, timeout_s, step
        self.folder = root / f"{mode}-{fault}-{step}"
        self.folder.mkdir()
        self.marker = uuid.uuid4().hex
        self.done = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # reported by the cell's test
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.done.set()

    def _run(self) -> None:
        env = {
            **worker_env(),
            "DISTKERAS_TIMEOUT": f"{self.timeout_s:g}",
            "DISTKERAS_FAULT_CELL": self.marker,
        }
        with open(self.folder / "out", "wb") as out:
            proc = subprocess.Popen(
                command(self.mode, self.folder, self.fault, self.step),
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
            fault_file = self.folder / ("ready" if self.fault == "term" else "fault")
            deadline = time.monotonic() + START_TIMEOUT_S
            while not fault_file.exists() and proc.poll() is None:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError(f"no fault within {START_TIMEOUT_S} s")
                time.sleep(0.02)
            if self.fault == "term" and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                self.fault_at = time.time()
            else:
                self.fault_at = float(fault_file.read_text()) if fault_file.exists() else None
            # The ranks (workers, and the launcher's relays) are the processes whose command line
            # names the cell's folder, the launcher itself (distkeras-launch, mpiexec, torchrun)
            # aside: they must be gone within END_S; the launcher may take its time to report.
            self.ranks_ended = None
            limit = time.monotonic() + END_S + 20 + self.timeout_s
            while proc.poll() is None and time.monotonic() < limit:
                if self.ranks_ended is None and not _ranks_of(self.folder, proc.pid):
                    self.ranks_ended = time.time()
                time.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
            self.code = proc.wait()
            self.ended = time.time()
            self.ranks_ended = self.ranks_ended or self.ended
            self.leftovers = _processes_with(self.marker, until=time.time() + 2.0)
            for pid in self.leftovers:  # do not leak them into other tests
                with _suppress():
                    os.kill(pid, signal.SIGKILL)
        self.output = (self.folder / "out").read_text(errors="replace")


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


def _ranks_of(folder: Path, launcher_pid: int) -> list[int]:
    """Pids other than the launcher's whose command line names `folder`."""
    needle, found = str(folder).encode(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != launcher_pid:
            try:
                if needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _processes_with(marker: str, until: float) -> list[int]:
    """Pids whose environment holds the cell's marker, once none is left or at `until`."""
    needle = f"DISTKERAS_FAULT_CELL={marker}".encode()
    while True:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    environ = Path(f"/proc/{entry}/environ").read_bytes()
                except OSError:
                    continue
                if needle in environ.split(b"\0"):
                    found.append(int(entry))
        if not found or time.time() > until:
            return found
        time.sleep(0.1)


def start_cells(cells: list[Cell], parallel: int = PARALLEL) -> None:
    """Runs the cells in the background, `parallel` at a time, in order."""
    slots = threading.Semaphore(parallel)
    pending = list(cells)

    def start_all():
        for cell in pending:
            slots.acquire()

            def run(cell=cell):
                try:
                    cell.run()
                finally:
                    slots.release()

            threading.Thread(target=run, daemon=True).start()

    threading.Thread(target=start_all, daemon=True).start()


@pytest.fixture(scope="module")
def cells(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("fail_fast")
    # Only the cells this session runs (pytest -k selects some), in the order they run.
    wanted = [
        (params["mode"], params["fault"], params.get("step", "built-in"))
        for item in request.session.items
        if item.module is request.module
        and hasattr(item, "callspec")
        and "fault" in (params := item.callspec.params)
    ]
    all_cells = {(m, f, s): Cell(m, f, root, step=s) for m, f, s in wanted}
    start_cells(list(all_cells.values()))
    return all_cells


# What names the failing rank (rank 1) and its error, per launch mode and fault; a tuple
# holds alternatives, any one of which must appear.
def expected_text(mode: str, fault: str) -> list:
    launcher = mode.startswith("launch")
    fault = fault.partition("-")[0]  # the same text in fit, evaluate and predict
    if fault == "raise":
        named = "rank 1 failed" if launcher else "rank 1 failed (RuntimeError"
        return [named, "RuntimeError: injected failure on rank 1"]
    if fault == "exit3":
        if launcher:  # the launcher sees rank 1 exit first, or rank 0 and then blames rank 1
            return [
                "rank 1 failed (sys.exit(3))",
                ("rank 1 failed with exit code 3", "rank 1 is to blame"),
            ]
        return ["rank 1 failed (sys.exit(3))"]
    if fault == "exit0":  # sys.exit(0) in the middle of fit: the job cannot go on
        return ["rank 1 left fit with sys.exit(0)"]
    if fault == "kill":
        if launcher:
            return ["rank 1 failed with signal SIGKILL"]
        if mode == "mpiexec":
            return ["BAD TERMINATION", "signal 9"]
        if mode == "srun":  # srun names the task; rank 0 says why it stopped
            return ["srun: error: localhost: task 1: Killed", "another worker disconnected"]
        return ["rank      : 1", "Signal 9 (SIGKILL)"]
    # term: the signal reached the job, and every rank said why it stopped.
    if launcher:
        return ["received SIGTERM; forwarding it to the workers"]
    return ["distkeras: Training preempted"]


@pytest.mark.parametrize(
    ("fault", "step"),
    [
        *((f, "built-in") for f in FAULTS + AFTER_FIT_FAULTS),
        *((f, "custom") for f in CUSTOM_STEP_FAULTS),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_every_rank_ends_fast_named_and_nothing_is_left(cells, mode, fault, step):
    cell = cells[(mode, fault, step)]
    assert cell.done.wait(START_TIMEOUT_S * 3), "the cell never finished"
    assert cell.error is None, cell.error
    tail = cell.output[-4000:]
    assert cell.fault_at is not None, f"the fault never happened:\n{tail}"
    assert cell.code != 0, f"exit code 0:\n{tail}"
    took, job = cell.ranks_ended - cell.fault_at, cell.ended - cell.fault_at
    print(f"{mode} {fault} {step}: exit {cell.code}; ranks gone {took:.1f} s, job {job:.1f} s")
    assert took < END_S, f"the ranks ended {took:.1f} s after the fault:\n{tail}"
    assert job < 2 * END_S, f"the launcher exited {job:.1f} s after the fault:\n{tail}"
    assert not cell.leftovers, f"processes left behind: {cell.leftovers}\n{tail}"
    for text in expected_text(mode, fault):
        choices = text if isinstance(text, tuple) else (text,)
        assert any(choice in cell.output for choice in choices), (
            f"{text!r} not in the output:\n{tail}"
        )


@pytest.mark.parametrize("mode", ["launch", "mpiexec"])
def test_a_collective_that_a_rank_that_ended_never_joins_fails_at_once(tmp_path, mode):
    # MPI has no connection to break: the rank that ended said which collective it reached.
    cell = Cell(mode, "extra", tmp_path)
    cell.run()
    assert cell.error is None, cell.error
    tail = cell.output[-3000:]
    assert cell.code != 0, tail
    assert cell.ended - cell.fault_at < END_S, tail
    assert "Rank 0: barrier #" in cell.output and "cannot complete because rank 1 ended" in tail
    assert not cell.leftovers, cell.leftovers
