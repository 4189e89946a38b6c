"""Worker output: rank prefixes, per-rank log files and the tails shown when a worker fails.

One background thread multiplexes every worker pipe with `selectors`, so N workers cost one
thread. Complete lines are written at once (lines of different ranks never mix); a partial
line (a progress bar redrawn with `\\r`, a prompt) is written after 50 ms of silence.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import selectors
import threading
import time
from collections.abc import Callable
from pathlib import Path

PREFIX = "[rank {}] "
# A relay under mpiexec reports its worker's exit status on stderr with this line, which the
# launcher consumes instead of printing (ASCII record separator: never in normal output).
EXIT_MARKER = b"\x1edistkeras-exit "
_EXIT_LINE = re.compile(rb"\x1edistkeras-exit rank=(\d+) returncode=(-?\d+)")
# A worker whose failure other ranks caused names them with this line on its stderr
# (distkeras.distributed.comm.BLAME_MARKER; the launcher imports nothing from distkeras).
_BLAME_LINE = re.compile(rb"\x1edistkeras-blame rank=(\d+) culprits=([\d,]+) ?([^\r\n]*)")
_RANK_PREFIX = re.compile(rb"\[rank (\d+)\] ")
_STACK_HEADER = b"distkeras: rank "
_TERMINATOR = re.compile(rb"\r\n|\n|\r(?!$)")
PARTIAL_FLUSH_S = 0.05
_CHUNK = 65536


class _Stream:
    __slots__ = ("fd", "owner", "rank", "kind", "dest", "buf", "at_line_start", "last_data", "line")

    def __init__(self, fd: int, rank: int | None, kind: str, dest: int):
        self.fd = fd
        self.owner = rank  # the rank the pipe was registered for
        self.rank = rank  # the rank the current line belongs to (differs for mpiexec pipes)
        self.kind = kind
        self.dest = dest
        self.buf = b""
        self.at_line_start = True
        self.last_data = 0.0
        self.line = b""  # the line being collected for the tail


class OutputPump:
    """Copies worker pipes to this process's stdout/stderr with a `[rank N] ` prefix.

    Args:
        log_dir: When set, every rank's output (unprefixed, stdout and stderr interleaved as
            they arrive) is also written to `log_dir/rank_<N>.log`.
        tail_lines: Lines of each rank's output kept for the failure report.
        prefixed_input: True when the pipes carry lines that relays already prefixed with
            `[rank N] ` (one mpiexec for all ranks): they are attributed by that prefix and
            printed unchanged, and exit markers are reported to `on_exit`.
        on_exit: Called from the pump thread as `on_exit(rank, returncode)` for every exit
            marker.
        on_blame: Called from the pump thread as `on_blame(rank, culprits, text)` for every
            blame line (a worker saying which ranks caused its failure); such lines are then
            not printed. When None they pass through (a relay forwards them).
        stdout_fd: Where stdout lines go.
        stderr_fd: Where stderr lines go.

    Example:

        read_end, write_end = os.pipe()
        proc = subprocess.Popen([sys.executable, "train.py"], stdout=write_end)
        os.close(write_end)
        pump = OutputPump(log_dir="logs")
        pump.add(read_end, rank=0, kind="stdout")  # the pump reads and closes read_end
        pump.start()
    """

    def __init__(
        self,
        log_dir: str | os.PathLike | None = None,
        tail_lines: int = 30,
        prefixed_input: bool = False,
        on_exit: Callable[[int, int], None] | None = None,
        on_blame: Callable[[int, tuple[int, ...], str], None] | None = None,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
    ):
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.tail_lines = tail_lines
        self.prefixed_input = prefixed_input
        self.on_exit = on_exit
        self.on_blame = on_blame
        self.quiet_unprefixed = False  # set once a relay reported a failure
        self._dest = {"stdout": stdout_fd, "stderr": stderr_fd}
        self._broken: set[int] = set()
        self._unfinished: dict[int, _Stream | None] = {}  # dest fd -> stream mid-line there
        self._streams: list[_Stream] = []
        self._open_per_rank: collections.Counter = collections.Counter()
        self._closed_events: dict[int | None, threading.Event] = {}
        self._tails: dict[tuple[int | None, str], collections.deque] = {}
        # rank -> the last Python stack it printed when a peer found it holding a collective up
        self._stacks: dict[int | None, list[bytes]] = {}
        self._in_stack: set[int | None] = set()
        self._logs: dict[int | None, object] = {}
        self._thread: threading.Thread | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)

    def add(self, fd: int, rank: int | None, kind: str) -> None:
        """Takes over a pipe's read end (`kind`: "stdout" or "stderr"); call before start()."""
        self._streams.append(_Stream(fd, rank, kind, self._dest[kind]))
        self._open_per_rank[rank] += 1
        self._closed_events.setdefault(rank, threading.Event())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="distkeras-output", daemon=True)
        self._thread.start()

    def wait_closed(self, rank: int | None, timeout: float) -> bool:
        """Waits until every pipe of `rank` reached end-of-file (its output is complete)."""
        event = self._closed_events.get(rank)
        return event.wait(timeout) if event is not None else True

    def join(self, timeout: float) -> None:
        """Waits for all pipes to close; a grandchild holding a pipe open cannot block us."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.drained():  # else the (daemon) thread still writes to them
            for log in self._logs.values():
                log.close()
            self._logs.clear()

    def drained(self) -> bool:
        """True when every pipe reached end-of-file and its output was written."""
        return self._thread is None or not self._thread.is_alive()

    def stack(self, rank: int | None) -> list[str]:
        """The last stack report of `rank` (see distkeras/distributed/hang.py), or []."""
        return [line.decode("utf-8", "replace") for line in self._stacks.get(rank, ())]

    def tail(self, rank: int | None) -> tuple[list[str], list[str]]:
        """Returns (last stderr lines, last lines of all output) of `rank`."""
        errors, output = (
            [line.decode("utf-8", "replace") for line in self._tails.get((rank, kind), ())]
            for kind in ("stderr", "all")
        )
        return errors, output

    # -- the pump thread -------------------------------------------------------------------

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        for stream in self._streams:
            selector.register(stream.fd, selectors.EVENT_READ, stream)
        open_streams = list(self._streams)
        while open_streams:
            waiting = any(s.buf for s in open_streams)
            for key, _ in selector.select(PARTIAL_FLUSH_S if waiting else None):
                stream = key.data
                try:
                    chunk = os.read(stream.fd, _CHUNK)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    selector.unregister(stream.fd)
                    open_streams.remove(stream)
                    self._finish(stream)
                    continue
                stream.buf += chunk
                stream.last_data = time.monotonic()
                self._emit_complete(stream)
            now = time.monotonic()
            for stream in open_streams:
                if stream.buf and now - stream.last_data >= PARTIAL_FLUSH_S:
                    self._emit(stream, stream.buf)
                    stream.buf = b""
        selector.close()

    def _emit_complete(self, stream: _Stream) -> None:
        start = 0
        for match in _TERMINATOR.finditer(stream.buf):
            self._emit(stream, stream.buf[start : match.end()])
            start = match.end()
        if len(stream.buf) - start > _CHUNK:  # an endless line: do not buffer it forever
            self._emit(stream, stream.buf[start:])
            start = len(stream.buf)
        stream.buf = stream.buf[start:]

    def _finish(self, stream: _Stream) -> None:
        if stream.buf:
            self._emit(stream, stream.buf)
            stream.buf = b""
        if not stream.at_line_start:
            # End the last line so the next rank's output (or an exit marker) starts fresh.
            self._emit(stream, b"\n")
        with contextlib.suppress(OSError):
            os.close(stream.fd)
        self._open_per_rank[stream.owner] -= 1
        if self._open_per_rank[stream.owner] == 0:
            self._closed_events[stream.owner].set()

    def _emit(self, stream: _Stream, segment: bytes) -> None:
        if self.prefixed_input:
            if stream.at_line_start:
                exit_line = _EXIT_LINE.match(segment)
                if exit_line is not None:
                    returncode = int(exit_line.group(2))
                    # mpiexec's own teardown banner after a worker failed is noise.
                    self.quiet_unprefixed = self.quiet_unprefixed or returncode != 0
                    if self.on_exit is not None:
                        self.on_exit(int(exit_line.group(1)), returncode)
                    return
                prefix = _RANK_PREFIX.match(segment)
                stream.rank = int(prefix.group(1)) if prefix else None
                if prefix is None and self.quiet_unprefixed:
                    self._log(None, segment)
                    return
                content = segment[prefix.end() :] if prefix else segment
                if self._blamed(content):
                    return
            else:
                content = segment
            shown = segment
        else:
            content = segment
            if stream.at_line_start and self._blamed(segment):
                return
            # A bare "\r" (a progress bar about to redraw) needs no prefix of its own.
            labelled = stream.at_line_start and segment != b"\r"
            shown = (PREFIX.format(stream.rank).encode() if labelled else b"") + segment
        other = self._unfinished.get(stream.dest)
        if other is not None and other is not stream:
            # Another rank left a partial line (a prompt, a progress bar) on this terminal:
            # end it, so lines never merge; its continuation gets a fresh prefix.
            self._write(stream.dest, b"\n")
            other.at_line_start = True
        stream.at_line_start = segment.endswith((b"\n", b"\r"))
        self._unfinished[stream.dest] = None if segment.endswith(b"\n") else stream
        self._write(stream.dest, shown)
        self._log(stream.rank, content)
        self._collect_tail(stream, content)

    def _blamed(self, line: bytes) -> bool:
        """Reports (and hides) a worker's blame line; False for any other line."""
        if self.on_blame is None:
            return False
        blame = _BLAME_LINE.match(line)
        if blame is None:
            return False
        culprits = tuple(int(r) for r in blame.group(2).split(b",") if r)
        self.on_blame(int(blame.group(1)), culprits, blame.group(3).decode("utf-8", "replace"))
        return True

    def _write(self, fd: int, data: bytes) -> None:
        if fd in self._broken:
            return  # keep draining the pipes so workers never block on a full pipe
        try:
            while data:
                data = data[os.write(fd, data) :]
        except OSError:  # e.g. `distkeras-launch ... | head` closed our stdout
            self._broken.add(fd)

    def _log(self, rank: int | None, content: bytes) -> None:
        if self.log_dir is None:
            return
        log = self._logs.get(rank)
        if log is None:
            name = f"rank_{rank}.log" if rank is not None else "mpiexec.log"
            log = self._logs[rank] = open(self.log_dir / name, "wb", buffering=0)  # noqa: SIM115
        log.write(content)

    def _collect_tail(self, stream: _Stream, content: bytes) -> None:
        if content.endswith(b"\r") and not content.endswith(b"\r\n"):
            stream.line = b""  # a redrawn progress bar: keep only finished lines
            return
        stream.line += content
        if not content.endswith(b"\n"):
            return
        line, stream.line = stream.line.rstrip(b"\r\n"), b""
        self._collect_stack(stream.rank, line)
        for kind in ("all", stream.kind) if stream.kind == "stderr" else ("all",):
            tail = self._tails.get((stream.rank, kind))
            if tail is None:
                tail = self._tails[(stream.rank, kind)] = collections.deque(maxlen=self.tail_lines)
            tail.append(line)

    def _collect_stack(self, rank: int | None, line: bytes) -> None:
        # A stuck rank's report: "distkeras: rank N has not reached ..." then indented frames.
        if line.startswith(_STACK_HEADER) and b" has not reached " in line:
            self._stacks[rank] = [line]
            self._in_stack.add(rank)
        elif rank in self._in_stack and line.startswith(b"  ") and len(self._stacks[rank]) < 200:
            self._stacks[rank].append(line)
        else:
            self._in_stack.discard(rank)


def exit_marker(rank: int, returncode: int) -> bytes:
    """The line a relay writes to stderr when its worker exits with a non-zero code."""
    return EXIT_MARKER + f"rank={rank} returncode={returncode}\n".encode()
