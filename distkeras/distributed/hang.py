"""Hang diagnosis shared by the backends' side channels (``mpi_watch``, ``store_watch``).

When a collective times out, the rank that waited asks every peer where it is. A peer's side
thread answers with :func:`whereabouts` (its last collective and the line its main thread
runs) and, when it is the one holding the collective up, prints its own Python stack
(:func:`print_stack_if_behind`). The asking rank then names the ranks that did not arrive
(:func:`diagnose`); under distkeras-launch the report blames them.

A rank whose side thread cannot answer (C code holding the GIL, a deadlock in an extension)
still dumps its stack: every rank registers ``faulthandler`` on DUMP_SIGNAL at start-up, and
the asking rank sends that signal to silent peers on its own host (:func:`poke`). faulthandler
writes from the signal handler itself, without the GIL.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import socket
import sys
import threading
import time
import traceback

from distkeras.distributed.comm import describe_collective

ANSWER_WAIT_S = 2.0  # how long a timed-out rank waits for its peers' answers
# A real-time signal: nothing else sends it, and it is only sent to ranks that registered it.
DUMP_SIGNAL = signal.SIGRTMIN + 5 if hasattr(signal, "SIGRTMIN") else None
_registered: list[bool] = []


def register_dump_signal() -> None:
    """Makes DUMP_SIGNAL print every thread's Python stack to stderr (once per process)."""
    if DUMP_SIGNAL is None or _registered:
        return
    with contextlib.suppress(ValueError, OSError, AttributeError, RuntimeError):
        faulthandler.register(DUMP_SIGNAL, file=sys.stderr, all_threads=True, chain=False)
        _registered.append(True)


def identity() -> tuple[str, int]:
    """(host, pid): what a peer needs to poke this rank."""
    return socket.gethostname(), os.getpid()


def poke(silent: list[int], identities: dict[int, tuple[str, int]]) -> list[int]:
    """Sends DUMP_SIGNAL to the silent peers on this host; returns the ranks poked."""
    host, poked = socket.gethostname(), []
    for peer in silent:
        peer_host, pid = identities.get(peer, (None, None))
        if DUMP_SIGNAL is None or peer_host != host or not pid:
            continue
        with contextlib.suppress(OSError):
            os.kill(pid, DUMP_SIGNAL)
            poked.append(peer)
    if poked:
        time.sleep(0.3)  # let them write before this rank's error (and exit) follows
    return poked


def _main_frame():
    return sys._current_frames().get(threading.main_thread().ident)


def whereabouts(comm) -> dict:
    """This rank's answer to 'where are you?' (built by the side thread, without the GIL's
    owner: it works while the main thread sleeps, waits or runs Python code)."""
    frame = _main_frame()
    if frame is None:
        where = "an unknown place"
    else:
        where = f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
    return {"rank": comm.rank, "last": list(comm.last), "where": where,
            "host": socket.gethostname(), "pid": os.getpid()}  # fmt: skip


def print_stack_if_behind(comm, ticket: tuple, asker: int, printed: set) -> None:
    """Prints this rank's stack once per collective that it holds up."""
    seq = ticket[0]
    if comm.last[0] >= seq or seq in printed:
        return
    printed.add(seq)
    frame = _main_frame()
    stack = "".join(traceback.format_stack(frame)) if frame is not None else "  (unknown)\n"
    text = (
        f"distkeras: rank {comm.rank} has not reached {describe_collective(ticket)}, which rank "
        f"{asker} waits in; its last collective was {describe_collective(comm.last)}. Its "
        f"Python stack (most recent call last):\n{stack}"
    )
    sys.stderr.flush()
    os.write(2, text.encode("utf-8", "replace"))


def diagnose(
    ticket: tuple,
    answers: dict[int, dict],
    rank: int,
    world_size: int,
    known=None,
    identities: dict[int, tuple[str, int]] | None = None,
):
    """(text, culprits) for a collective ``ticket`` = (seq, op, epoch, step) that timed out.

    ``answers`` maps the peers that answered to their :func:`whereabouts`; ``known`` maps
    peers to the last collective they published, for those that did not answer;
    ``identities`` maps peers to (host, pid), to poke the silent ones on this host.
    """
    silent = [p for p in range(world_size) if p != rank and p not in answers]
    poked = set(poke(silent, identities or {}))
    seq = ticket[0]
    lines, culprits = [], []
    for peer in range(world_size):
        if peer == rank:
            continue
        answer = answers.get(peer)
        if answer is None:
            culprits.append(peer)
            last = (known or {}).get(peer)
            seen = f"; its last collective was {describe_collective(tuple(last))}" if last else ""
            dumped = (
                "; it was signalled to print its stack (faulthandler) into its output"
                if peer in poked
                else ""
            )
            lines.append(
                f"rank {peer} did not answer (it died, or is stuck in code that holds the "
                f"GIL){seen}{dumped}"
            )
        elif answer["last"][0] < seq:
            culprits.append(peer)
            lines.append(
                f"rank {peer} did not arrive: its last collective was "
                f"{describe_collective(tuple(answer['last']))} and it is running "
                f"{answer['where']} (pid {answer['pid']} on {answer['host']}; its stack is in "
                "its output)"
            )
    if not lines:
        return (
            "every rank reached this collective; they may have called different collectives.",
            (),
        )
    return "; ".join(lines) + ".", tuple(culprits)
