"""Spawning and supervising the workers of one node.

Guarantees, in order of importance:

* No orphans. Every worker runs in its own process group (so a terminal's Ctrl-C reaches only
  the launcher, which forwards it once, and so a whole worker tree can be signalled), gets
  `PR_SET_PDEATHSIG=SIGKILL` on Linux (it dies with the launcher, even a SIGKILLed one), and a
  tiny reaper process kills the worker process groups if the launcher disappears without
  saying goodbye (the fallback where prctl is unavailable, and the cleanup of grandchildren).
* Fail fast. The first worker that exits non-zero (an exception, `sys.exit(3)`, a signal such
  as SIGKILL from the OOM killer) makes the launcher send SIGTERM to all other workers,
  SIGKILL after `grace_period` seconds, print the failed rank with the tail of its output, and
  exit with the worker's exit code (128 + signal number for a signal). When the failed
  worker says other ranks caused its failure (they failed, left, or never arrived at a
  collective it timed out in), the report names those ranks, with their output's tail (a
  stuck rank's Python stack), and the launcher exits with the culprit's code when it has one.
* Signals. SIGINT, SIGTERM and SIGHUP are forwarded to every worker; the launcher exits after
  they end (a second one, or `grace_period` seconds, escalates to SIGKILL). SIGUSR1/SIGUSR2
  (SLURM's `--signal`, checkpoint requests) are forwarded and change nothing else.
* Requeue. A worker that exits with `REQUEUE_EXIT_CODE` (75) was preempted and saved its
  state: not a failure. The others stop after the same step, so the launcher waits for them
  (SIGKILL after `grace_period` seconds for a straggler) and exits 75 too, which asks the batch
  system to run the job again.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .streams import OutputPump

TERMINATING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PASS_THROUGH_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
POLL_S = 0.02
# distkeras.training.preemption.REQUEUE_EXIT_CODE (sysexits' EX_TEMPFAIL): "preempted, state
# saved, run me again". Repeated here because the launcher must not import distkeras (torch).
REQUEUE_EXIT_CODE = 75
_PR_SET_PDEATHSIG = 1

_REAPER_SCRIPT = str(Path(__file__).with_name("_reaper.py"))


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(parent: int, prctl: Callable[..., int] | None = None) -> None:
    """Asks the kernel to SIGKILL this process when its parent `parent` dies (Linux)."""
    if prctl is None:
        prctl = _load_prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(128 + int(signal.SIGKILL))


def child_preexec(new_group: bool) -> Callable[[], None]:
    """Returns a preexec_fn: own process group, and death with the spawning process.

    Must be used only while the spawning process has a single thread (preexec_fn runs
    between fork and exec).
    """
    prctl = _load_prctl()  # resolved before fork: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        if new_group:
            os.setpgid(0, 0)
        die_with_parent(parent, prctl)

    return preexec


class Reaper:
    """The fallback that kills worker process groups when the launcher dies abruptly."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-S", _REAPER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _send(self, text: str) -> None:
        try:
            self._proc.stdin.write(text.encode())
            self._proc.stdin.flush()
        except (OSError, ValueError):
            pass  # the reaper is a safety net; never let it break the launch

    def watch(self, pgid: int) -> None:
        self._send(f"{pgid}\n")

    def done(self) -> None:
        self._send("done\n")
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass


class Child:
    """A supervised process (a worker, or an mpiexec standing for all ranks).

    Every child leads its own process group. SIGKILL always goes to the whole group;
    `signal_group` says whether polite signals (SIGTERM, SIGINT...) do too, or only reach the
    process itself (mpiexec forwards them to its ranks on its own).
    """

    def __init__(self, proc: subprocess.Popen, rank: int | None, label: str, signal_group: bool):
        self.proc = proc
        self.rank = rank
        self.label = label
        self.signal_group = signal_group
        self.returncode: int | None = None

    def send(self, sig: int, whole_group: bool | None = None) -> None:
        if whole_group is None:
            whole_group = self.signal_group or sig == signal.SIGKILL
        try:
            if whole_group:
                os.killpg(self.proc.pid, sig)
            else:
                os.kill(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def describe_exit(returncode: int) -> str:
    """'exit code 3' or 'signal SIGKILL' for a Popen returncode."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def shell_exit_code(returncode: int) -> int:
    """A Popen returncode as a shell reports it: 128 + N for death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


@dataclasses.dataclass(frozen=True)
class GroupResult:
    """How one group of workers ended.

    Attributes:
        code: The launcher's exit code for this group (0, 75 to requeue, else a failure's).
        failed: Who failed ("rank 1", "mpiexec"), or None.
        restartable: True when a worker failed on its own (not after a signal to the launcher,
            not a requeue), so starting the group again may help.
    """

    code: int
    failed: str | None = None
    restartable: bool = False


class Supervisor:
    """Waits for the children, tears the job down on the first failure, forwards signals.

    Args:
        pump: The output pump (its tails feed the failure report).
        grace_period: Seconds between SIGTERM and SIGKILL when stopping workers.
    """

    def __init__(self, pump: OutputPump, grace_period: float):
        self.pump = pump
        self.grace_period = grace_period
        self.children: list[Child] = []
        self._signals: list[int] = []
        self._reported_exits: list[tuple[int, int]] = []
        self._blames: dict[int, tuple[tuple[int, ...], str]] = {}  # rank -> (culprits, why)
        # rank -> (returncode, ended before the launcher stopped anyone), every worker that ended
        self._codes: dict[int, tuple[int, bool]] = {}
        self._failure: tuple[int | None, int, str] | None = None
        self._requeue = False  # a worker exited with REQUEUE_EXIT_CODE
        self._stop_signal: int | None = None
        self._kill_at: float | None = None
        self._old_handlers: dict[int, object] = {}

    # Installed before the first spawn so that a signal during start-up is not lost.
    def install_signal_handlers(self) -> None:
        for sig in TERMINATING_SIGNALS + PASS_THROUGH_SIGNALS:
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def restore_signal_handlers(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)

    def report_exit(self, rank: int, returncode: int) -> None:
        """Called (from the pump thread) when a relay reports its worker's exit status."""
        self._reported_exits.append((rank, returncode))

    def report_blame(self, rank: int, culprits: tuple[int, ...], why: str) -> None:
        """Called (from the pump thread) when a worker says which ranks caused its failure."""
        self._blames.setdefault(rank, (culprits, why))

    def run(self) -> GroupResult:
        """Supervises until every child has ended; returns how the group ended."""
        while True:
            self._handle_signals()
            self._take_reports()
            self._reap()
            if all(c.returncode is not None for c in self.children):
                break
            if self._kill_at is not None and time.monotonic() >= self._kill_at:
                self._kill_at = None
                for child in self._alive():
                    child.send(signal.SIGKILL)
            time.sleep(POLL_S)
        return self._finish()

    def kill_all(self) -> None:
        """Last resort (the launcher itself failed): SIGKILL every child's group."""
        for child in self.children:
            child.send(signal.SIGKILL)
            if child.returncode is None:
                child.returncode = child.proc.wait()

    def _take_reports(self) -> None:
        while self._reported_exits:
            rank, returncode = self._reported_exits.pop(0)
            self._exited(rank, returncode, f"rank {rank}")

    def _alive(self) -> list[Child]:
        return [c for c in self.children if c.returncode is None]

    def _reap(self) -> None:
        for child in self._alive():
            returncode = child.proc.poll()
            if returncode is None:
                continue
            child.returncode = returncode
            if child.rank is None:
                # mpiexec: read its ranks' exit markers first, they name the failed rank.
                self.pump.wait_closed(None, timeout=2.0)
                self._take_reports()
            # After its ranks' requeue markers, mpiexec's own non-zero code is no failure.
            self._exited(child.rank, returncode, child.label)
            # Anything the worker left behind in its process group dies with it.
            child.send(signal.SIGKILL)

    def _exited(self, rank: int | None, returncode: int, label: str) -> None:
        if rank is not None:
            self._codes.setdefault(rank, (returncode, self._failure is None))
        if returncode == 0:
            return
        if returncode == REQUEUE_EXIT_CODE:
            if not self._requeue and self._failure is None and self._stop_signal is None:
                # All ranks agreed to stop after the same step and are saving or exiting:
                # give them the grace period, then kill stragglers.
                self._kill_at = time.monotonic() + self.grace_period
            self._requeue = True
            return
        # A worker that exits after we asked everyone to stop (or after another was
        # preempted) is not a new failure.
        if self._stop_signal is None and not self._requeue:
            self._fail(rank, returncode, label)

    def _fail(self, rank: int | None, returncode: int, label: str) -> None:
        if self._failure is not None:
            return
        self._failure = (rank, returncode, label)
        _say(f"{label} failed ({describe_exit(returncode)}); stopping the other workers.")
        self._stop(signal.SIGTERM)

    def _stop(self, sig: int) -> None:
        for child in self._alive():
            child.send(sig)
        if self._kill_at is None:
            self._kill_at = time.monotonic() + self.grace_period

    def _handle_signals(self) -> None:
        while self._signals:
            sig = self._signals.pop(0)
            if sig in PASS_THROUGH_SIGNALS:
                for child in self._alive():
                    child.send(sig, whole_group=False)  # helper processes would die of USR1
                continue
            if self._stop_signal is None:
                self._stop_signal = sig
                _say(f"received {signal.Signals(sig).name}; forwarding it to the workers.")
                self._stop(sig)
            else:
                _say(f"received {signal.Signals(sig).name} again; killing the workers.")
                for child in self._alive():
                    child.send(signal.SIGKILL)

    def _finish(self) -> GroupResult:
        if self._failure is not None:
            rank, returncode, label = self._failure
            self.pump.wait_closed(rank, timeout=2.0)
            restartable = self._stop_signal is None
            culprits, why = self._blames.get(rank, ((), ""))
            culprits = tuple(c for c in culprits if c != rank)
            if not culprits:
                self._print_tail(rank, label, returncode)
                return GroupResult(shell_exit_code(returncode), label, restartable)
            for culprit in culprits:
                self.pump.wait_closed(culprit, timeout=2.0)
                self._print_tail(
                    culprit,
                    f"rank {culprit}",
                    self._own_code(culprit),
                    cause=f"{label} stopped because {why}",
                )
            returncode = self._own_code(culprits[0]) or returncode
            return GroupResult(shell_exit_code(returncode), f"rank {culprits[0]}", restartable)
        if self._requeue:
            _say(
                f"the workers were preempted and exited {REQUEUE_EXIT_CODE}: requeue the job "
                "to resume from its last backup."
            )
            return GroupResult(REQUEUE_EXIT_CODE)
        if self._stop_signal is not None:
            # like a shell: interrupted, whatever they did
            return GroupResult(128 + int(self._stop_signal))
        return GroupResult(0)

    def _own_code(self, rank: int) -> int | None:
        """`rank`'s exit status when it ended by itself (not by our SIGTERM or SIGKILL)."""
        returncode, first = self._codes.get(rank, (None, False))
        if returncode is None or returncode == 0:
            return None
        return returncode if first or returncode > 0 else None

    def _print_tail(
        self, rank: int | None, label: str, returncode: int | None, cause: str = ""
    ) -> None:
        errors, output = self.pump.tail(rank)
        lines, what = (errors, "stderr") if errors else (output, "output")
        stack = self.pump.stack(rank) if cause else []
        if cause:
            # Blamed by the rank that failed: it failed (exit status known), or it is stuck
            # or gone (the others were stopped before it ended).
            ended = f"failed with {describe_exit(returncode)}" if returncode else "is to blame"
            header = f"{label} {ended} ({cause})"
        else:
            header = f"{label} failed with {describe_exit(returncode)}"
        if stack:  # a stuck rank: where it was when asked beats whatever it printed later
            body = "".join(f"    {line}\n" for line in stack)
            _say(f"{header}. Where it was when asked:\n{body}", newline=False)
            return
        if not lines:
            _say(f"{header}; it wrote nothing.")
            return
        body = "".join(f"    {line}\n" for line in lines)
        _say(f"{header}. Last {len(lines)} line(s) of its {what}:\n{body}", newline=False)


def _say(message: str, newline: bool = True) -> None:
    text = f"distkeras-launch: {message}" + ("\n" if newline else "")
    with contextlib.suppress(OSError):
        os.write(2, text.encode("utf-8", "replace"))


def spawn_with_pipes(
    pump: OutputPump,
    rank: int | None,
    argv: Sequence[str],
    env: Mapping[str, str],
    preexec: Callable[[], None],
    close_fds: bool = True,
) -> subprocess.Popen:
    """Starts `argv` with its stdout and stderr on fresh pipes whose read ends `pump` owns."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            preexec_fn=preexec,
            close_fds=close_fds,
        )
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    pump.add(out_r, rank, "stdout")
    pump.add(err_r, rank, "stderr")
    return proc


def run_local(
    argv: Sequence[str],
    worker_envs: Sequence[tuple[int, Mapping[str, str]]],
    grace_period: float,
    log_dir: str | None,
) -> GroupResult:
    """Starts one process per `(rank, env)` running `argv` and supervises them.

    Args:
        argv: The worker command, e.g. `[sys.executable, "train.py", "--epochs", "3"]`.
        worker_envs: `(global rank, complete environment)` for each local worker.
        grace_period: Seconds between SIGTERM and SIGKILL when stopping workers.
        log_dir: Directory for `rank_<N>.log` files, or None.

    Returns:
        How the group ended (its `code` is the launcher's exit code).
    """
    pump = OutputPump(log_dir=log_dir)
    supervisor = Supervisor(pump, grace_period)
    pump.on_blame = supervisor.report_blame
    supervisor.install_signal_handlers()
    reaper = Reaper()
    try:
        # Every fork happens before the pump thread starts: preexec_fn is unsafe with threads.
        preexec = child_preexec(new_group=True)
        for rank, env in worker_envs:
            proc = spawn_with_pipes(pump, rank, argv, env, preexec)
            reaper.watch(proc.pid)
            supervisor.children.append(Child(proc, rank, f"rank {rank}", signal_group=True))
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
