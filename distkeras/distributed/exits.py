"""Leaving a multi-process job without hanging it: what a worker does when it fails or ends.

MPI gives a failing process two bad choices. ``MPI_Finalize`` waits for the peers, which wait
in the all-reduce for the failing process: the whole job hangs until ``DISTKERAS_TIMEOUT``.
``MPI_Abort`` ends every rank at once, before the failing rank's traceback reaches the
terminal, and leaves the peers' messages unsaid. So a communicator that needs it (MPI)
installs this module, which

* on an uncaught exception or Ctrl-C (``sys.excepthook``), or a ``sys.exit(code)`` that
  left ``fit`` and ended the script (:func:`failure_scope`), tells the peers at once (they
  raise :class:`CollectiveError` naming this rank and its error instead of waiting) and
  leaves with its exit code without ``MPI_Finalize``; mpiexec then ends the job;
* at any other exit (the script's end, ``sys.exit()`` outside fit) tells the peers which
  collective it reached, so a peer still expecting it in a later collective fails at once,
  and then finalizes normally;
* under distkeras-launch, when this rank fails *because of* other ranks (their failure, their
  departure, or their delay in a collective), writes a marker line naming them, so that the
  launcher's report blames them and not this rank.

A preemption stop (``TrainingPreempted``: every rank agreed to stop after the same step) is no
failure: it exits with code 75 after a normal finalize.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Iterator

from distkeras.distributed.comm import BLAME_MARKER, POSITION

_COMM = None  # the communicator whose peers must hear about this process's exit
_ORIGINAL_EXCEPTHOOK = None
_FAILURE: list = []  # [exit code, description] once this process is failing
_EXIT_IN_FIT: list = []  # [(SystemExit, collectives done then)] from the last fit


def install(comm) -> None:
    """Makes ``comm``'s peers hear about this process's failure or exit (idempotent).

    ``comm`` may provide ``announce_failure(text, code, culprits)`` and ``close(failed)``
    (tell the peers we leave, release side channels); its ``_broken`` is set once a
    collective failed (the backend cannot finalize cleanly).
    """
    global _COMM, _ORIGINAL_EXCEPTHOOK
    from distkeras.distributed import hang

    hang.register_dump_signal()  # a stuck rank's stack, even while C code holds the GIL
    if _COMM is None:
        _ORIGINAL_EXCEPTHOOK = sys.excepthook
        sys.excepthook = _excepthook
        # Registered after mpi4py's own exit handler, so this one runs first (LIFO).
        atexit.register(_at_exit)
    _COMM = comm
    _FAILURE.clear()
    _EXIT_IN_FIT.clear()


def uninstall(comm) -> None:
    """Forgets ``comm`` (after an orderly shutdown)."""
    global _COMM
    if _COMM is comm:
        _COMM = None


@contextlib.contextmanager
def failure_scope() -> Iterator[None]:
    """Wraps fit: an exception, ``sys.exit`` or Ctrl-C leaving it is announced to the peers.

    SystemExit never reaches ``sys.excepthook``: a ``sys.exit(3)`` in a callback is noted here,
    and announced at exit if nothing ran a collective since (the script did not catch it and
    go on). Other exceptions are announced by the excepthook once uncaught: errors that every
    rank raises alike (different data, different models) may be caught and the job go on.
    It also clears the training position (epoch, step) that collectives report.
    """
    try:
        yield
    except SystemExit as error:
        if _COMM is not None:
            _EXIT_IN_FIT[:] = [(error, _COMM.seq)]
        raise
    finally:
        POSITION.epoch = POSITION.step = None


def exit_code(error: BaseException) -> int:
    """The exit code an uncaught ``error`` gives the process."""
    if isinstance(error, SystemExit):
        if error.code is None:
            return 0
        return error.code if isinstance(error.code, int) else 1
    if isinstance(error, KeyboardInterrupt):
        return 128 + 2
    return 1


def describe(error: BaseException) -> str:
    """One line for the peers: 'RuntimeError: boom', 'sys.exit(3)'."""
    if isinstance(error, SystemExit):
        return f"sys.exit({error.code!r})" if error.code is not None else "sys.exit()"
    text = (getattr(error, "summary", "") or str(error)).strip().splitlines()
    if not text:
        return type(error).__name__
    line = text[0] if len(text[0]) <= 300 else text[0][:297] + "..."
    return f"{type(error).__name__}: {line}"


def record_failure(error: BaseException) -> None:
    """This process is failing with ``error``: tell the peers (once), note the exit code."""
    comm = _COMM
    if comm is None or _FAILURE:
        return
    from distkeras.training.preemption import TrainingPreempted

    if isinstance(error, TrainingPreempted):
        return  # every rank agreed to stop after this step: an orderly exit
    code = exit_code(error)
    culprits = tuple(getattr(error, "culprits", ()))
    if culprits:
        _write_blame(comm.rank, culprits, getattr(error, "summary", "") or str(error))
    _FAILURE[:] = [code, describe(error)]
    announce = getattr(comm, "announce_failure", None)  # torch: gloo sees the exit itself
    if announce is not None:
        with contextlib.suppress(Exception):  # best effort: never mask the error
            announce(describe(error), code, culprits)


def _write_blame(rank: int, culprits: tuple[int, ...], text: str) -> None:
    if os.environ.get("DISTKERAS_LAUNCHER") != "1":
        return  # only distkeras-launch reads (and hides) the marker
    summary = " ".join(text.split())[:2000]
    line = f"{BLAME_MARKER} rank={rank} culprits={','.join(map(str, culprits))} {summary}\n"
    _flush()
    with contextlib.suppress(OSError):
        os.write(2, line.encode("utf-8", "replace"))


def _excepthook(exc_type, error, traceback) -> None:
    # The traceback first: it is the error text the peers' messages point at.
    _ORIGINAL_EXCEPTHOOK(exc_type, error, traceback)
    record_failure(error)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _at_exit() -> None:
    comm = _COMM
    if comm is None:
        return
    if _EXIT_IN_FIT and not _FAILURE:
        error, seq = _EXIT_IN_FIT[0]
        if seq == comm.seq:  # it ended the script: nothing ran a collective since
            record_failure(error)
    code, what = _FAILURE if _FAILURE else (None, "")
    # A failed MPI collective leaves a request MPI_Finalize would wait for; torch's group is
    # already torn down by then, so a script that caught the error may end normally.
    broken = getattr(comm, "_broken", None) is not None and comm.backend == "mpi"
    if code or broken:
        # MPI_Finalize would wait for peers that wait for us, or for a request that can never
        # complete. The error is printed and the peers are told: leave now; mpiexec (or the
        # launcher's relay) sees the exit code and ends the job.
        code = code or 1
        _say(
            f"rank {comm.rank} failed ({what or 'a collective failed'}); leaving with exit "
            f"code {code} without waiting for the other ranks."
        )
        _close(comm, failed=True)
        _flush()
        os._exit(code)
    if code == 0:
        # sys.exit(0) in the middle of fit: the peers were told and fail naming this rank;
        # finalizing normally lets them say so before mpiexec ends the job.
        _say(f"rank {comm.rank} left fit with sys.exit(0); the other ranks cannot continue.")
    _close(comm, failed=False)


def _close(comm, failed: bool) -> None:
    close = getattr(comm, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close(failed=failed)


def _say(message: str) -> None:
    _flush()
    with contextlib.suppress(OSError):
        os.write(2, f"distkeras: {message}\n".encode("utf-8", "replace"))
