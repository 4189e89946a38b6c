"""The output pump on plain pipes: prefixes, partial lines, tails, logs and exit markers."""

import os
import threading
import time

from distkeras_launcher.streams import OutputPump, exit_marker


def _pump_through(pump_kwargs, writes, log_dir=None, delay=0.0):
    """Feeds `writes` [(rank, kind, bytes)] through a pump; returns (stdout, stderr, pump)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pump = OutputPump(log_dir=log_dir, stdout_fd=out_w, stderr_fd=err_w, **pump_kwargs)
    sources = {}
    for rank, kind, _ in writes:
        if (rank, kind) not in sources:
            read_end, write_end = os.pipe()
            sources[(rank, kind)] = write_end
            pump.add(read_end, rank, kind)
    pump.start()
    for rank, kind, data in writes:
        os.write(sources[(rank, kind)], data)
        time.sleep(delay)  # > 50 ms: the pump writes out what it has before the next write
    for fd in sources.values():
        os.close(fd)
    results = {}

    def drain(name, fd):
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        results[name] = b"".join(chunks)

    readers = [threading.Thread(target=drain, args=a) for a in (("out", out_r), ("err", err_r))]
    for reader in readers:
        reader.start()
    pump.join(timeout=10)
    assert pump.drained()
    os.close(out_w)
    os.close(err_w)
    for reader in readers:
        reader.join(timeout=10)
    os.close(out_r)
    os.close(err_r)
    return results["out"], results["err"], pump


def test_prefixes_partial_lines_and_tails(tmp_path):
    out, err, pump = _pump_through(
        {"tail_lines": 2},
        [
            (2, "stdout", b"hello\r\n"),
            (1, "stderr", b"e1\ne2\ne3\nno newline"),
            (0, "stdout", b"one\ntw"),
            (0, "stdout", b"o\n\rstep 1\rstep 2\n"),
        ],
        log_dir=tmp_path,
    )
    assert out.count(b"[rank 0] one\n") == 1
    assert b"[rank 0] two\n" in out  # a line split across writes stays one line
    assert b"\r[rank 0] step 1\r[rank 0] step 2\n" in out  # progress redraws keep their prefix
    assert b"[rank 2] hello\r\n" in out
    assert err == b"[rank 1] e1\n[rank 1] e2\n[rank 1] e3\n[rank 1] no newline\n"
    errors, output = pump.tail(1)
    assert errors == ["e3", "no newline"]  # tail_lines=2, the unfinished line completed
    assert output == ["e3", "no newline"]
    assert pump.tail(0) == ([], ["two", "step 2"])  # "step 1" was redrawn over
    assert (tmp_path / "rank_0.log").read_bytes() == b"one\ntwo\n\rstep 1\rstep 2\n"
    assert (tmp_path / "rank_1.log").read_bytes().count(b"e2\n") == 1


def test_a_partial_line_is_ended_before_another_rank_writes():
    out, _, _ = _pump_through(
        {},
        [(0, "stdout", b"Password: "), (1, "stdout", b"line\n"), (0, "stdout", b"ok\n")],
        delay=0.2,
    )
    assert out == b"[rank 0] Password: \n[rank 1] line\n[rank 0] ok\n"


def test_relay_prefixed_input_and_exit_markers(tmp_path):
    reports = []
    out, err, pump = _pump_through(
        {"prefixed_input": True, "on_exit": lambda rank, code: reports.append((rank, code))},
        [
            (None, "stdout", b"[rank 1] progress\n[rank 0] ok\n"),
            (None, "stderr", b"[rank 1] Traceback\n[rank 1] ValueError: x\n"),
            (None, "stderr", exit_marker(1, 1)),
            (None, "stderr", b"=  BAD TERMINATION banner from mpiexec\n"),
        ],
        log_dir=tmp_path,
    )
    assert reports == [(1, 1)]
    assert out == b"[rank 1] progress\n[rank 0] ok\n"  # printed unchanged
    assert err == b"[rank 1] Traceback\n[rank 1] ValueError: x\n"  # no marker, no banner
    errors, output = pump.tail(1)
    assert errors == ["Traceback", "ValueError: x"]
    assert sorted(output) == ["Traceback", "ValueError: x", "progress"]
    assert (tmp_path / "rank_1.log").read_bytes() == b"progress\nTraceback\nValueError: x\n"
    assert b"BAD TERMINATION" in (tmp_path / "mpiexec.log").read_bytes()
