"""distkeras-launch with real worker processes: output, environment, failures, signals.

Every test starts the launcher as a subprocess on a small worker script written to tmp_path.
Workers record their pids (and those of a child they start) so the tests can check that
nothing outlives the launcher.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

WORKER = r"""
import json, os, signal, subprocess, sys, time
rank = int(os.environ["RANK"])
mode, folder = sys.argv[1], sys.argv[2]
pids = [os.getpid()]
if "child" in mode:  # a grandchild of the launcher, in the worker's process group
    pids.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]).pid)

def on_signal(signum, frame):
    with open(os.path.join(folder, f"signal{rank}"), "w") as f:
        f.write(str(signum))
    sys.exit(0)

signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
if "stubborn" in mode:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(os.path.join(folder, f"pids{rank}.tmp"), "w") as f:
    f.write(" ".join(map(str, pids)))
os.replace(os.path.join(folder, f"pids{rank}.tmp"), os.path.join(folder, f"pids{rank}"))

if mode == "env":
    names = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
             "MASTER_PORT", "DISTKERAS_LAUNCHER", "DISTKERAS_BACKEND", "PYTHONUNBUFFERED"]
    print("ENV " + json.dumps({n: os.environ.get(n) for n in names} | {"argv": sys.argv[3:]}))
    print(f"to stderr from {rank}", file=sys.stderr)
    sys.stdout.write("no newline at the end")
    sys.exit(0)
if mode == "mpi":
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    total = comm.allreduce(rank)
    print(f"MPI rank={comm.Get_rank()} size={comm.Get_size()} sum={total}")
    sys.exit(0)
if mode == "rendezvous":  # every rank reaches rank 0 at MASTER_ADDR:MASTER_PORT
    import socket
    addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    world = int(os.environ["WORLD_SIZE"])
    if rank == 0:
        server = socket.create_server((addr, port))
        seen = [0]
        for _ in range(world - 1):
            conn, _ = server.accept()
            seen.append(int(conn.recv(16)))
            conn.close()
        print("RENDEZVOUS " + json.dumps(sorted(seen)))
    else:
        deadline = time.time() + 20
        while True:
            try:
                with socket.create_connection((addr, port), timeout=1) as conn:
                    conn.sendall(str(rank).encode())
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
    print("ENV " + json.dumps({n: os.environ[n] for n in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}))
    sys.exit(0)
if rank == 1 and mode.startswith("fail"):
    # Fail only once every worker is up, so the test knows all the pids to check.
    world = int(os.environ["WORLD_SIZE"])
    while not all(os.path.exists(os.path.join(folder, f"pids{r}")) for r in range(world)):
        time.sleep(0.02)
    action = mode.split("-")[1]
    if action == "raise":
        raise ValueError("boom from rank one")
    if action == "exit3":
        print("leaving with 3", file=sys.stderr)
        sys.exit(3)
    if action == "kill":
        print("about to be killed")
        os.kill(os.getpid(), signal.SIGKILL)
print("waiting", flush=True)
time.sleep(60)
"""


@pytest.fixture
def worker(tmp_path):
    path = tmp_path / "worker.py"
    path.write_text(WORKER)
    return path


def _command(*args):
    return [sys.executable, "-m", "distkeras_launcher", *map(str, args)]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _run(*args, timeout=60):
    start = time.monotonic()
    out = subprocess.run(
        _command(*args), capture_output=True, text=True, timeout=timeout, env=_env(), cwd=REPO
    )
    return out, time.monotonic() - start


def _start(*args):
    return subprocess.Popen(
        _command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO,
    )


def _wait_for_pids(launcher, folder: Path, ranks, timeout=30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        files = [folder / f"pids{r}" for r in ranks]
        if all(f.exists() for f in files):
            return [int(p) for f in files for p in f.read_text().split()]
        if launcher.poll() is not None or time.monotonic() > deadline:
            launcher.kill()
            stdout, stderr = launcher.communicate()
            raise AssertionError(f"workers did not start:\n{stdout}\n{stderr}")
        time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie is dead; only its parent has not collected it yet


def _assert_all_gone(pids, timeout=5.0):
    deadline = time.monotonic() + timeout
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if _running(p)], "processes outlived the launcher"


def _env_lines(stdout: str) -> list[dict]:
    return [json.loads(line.split("ENV ", 1)[1]) for line in stdout.splitlines() if "ENV " in line]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_environment_prefixes_and_log_files(worker, tmp_path):
    logs = tmp_path / "logs"
    out, _ = _run(
        "-n",
        3,
        "--backend",
        "torch",
        "--log-dir",
        logs,
        worker,
        "env",
        tmp_path,
        "--flag",
        "-n",
        "9",
    )
    assert out.returncode == 0, out.stderr
    seen = {}
    for line in out.stdout.splitlines():
        if "ENV " in line:
            prefix, payload = line.split("ENV ", 1)
            variables = json.loads(payload)
            assert prefix == f"[rank {variables['RANK']}] "
            seen[int(variables["RANK"])] = variables
    assert sorted(seen) == [0, 1, 2]
    port = seen[0]["MASTER_PORT"]
    assert 0 < int(port) < 65536
    for rank, variables in seen.items():
        assert variables == {
            "RANK": str(rank),
            "WORLD_SIZE": "3",
            "LOCAL_RANK": str(rank),
            "LOCAL_WORLD_SIZE": "3",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "DISTKERAS_LAUNCHER": "1",
            "DISTKERAS_BACKEND": "torch",
            "PYTHONUNBUFFERED": "1",
            "argv": ["--flag", "-n", "9"],
        }
    # stderr lines are prefixed too, and an unfinished last line is completed.
    assert sorted(line for line in out.stderr.splitlines() if "to stderr" in line) == [
        f"[rank {r}] to stderr from {r}" for r in range(3)
    ]
    assert sum("] no newline at the end" in line for line in out.stdout.splitlines()) == 3
    # Per-rank log files hold the worker's own lines, unprefixed.
    for rank in range(3):
        text = (logs / f"rank_{rank}.log").read_text()
        assert f"to stderr from {rank}\n" in text and "[rank" not in text
        assert json.loads(text.split("ENV ", 1)[1].splitlines()[0])["RANK"] == str(rank)


@pytest.mark.parametrize(
    "backend, action, code, description, tail",
    [
        ("torch", "raise", 1, "exit code 1", "ValueError: boom from rank one"),
        ("torch", "exit3", 3, "exit code 3", "leaving with 3"),
        ("torch", "kill", 128 + 9, "signal SIGKILL", "about to be killed"),
        ("mpi", "raise", 1, "exit code 1", "ValueError: boom from rank one"),
        ("mpi", "kill", 128 + 9, "signal SIGKILL", "about to be killed"),
    ],
)
def test_first_failure_stops_everyone(worker, tmp_path, backend, action, code, description, tail):
    launcher = _start("-n", 3, "--backend", backend, worker, f"fail-{action}-child", tmp_path)
    pids = _wait_for_pids(launcher, tmp_path, range(3))  # each worker and the child it started
    start = time.monotonic()
    stdout, stderr = launcher.communicate(timeout=30)
    assert time.monotonic() - start < 8.0, "the launcher took too long to stop the others"
    assert launcher.returncode == code, stderr
    assert f"rank 1 failed ({description}); stopping the other workers." in stderr
    report = stderr.split(f"rank 1 failed with {description}", 1)[1]
    assert tail in report
    if action == "raise":
        assert "Traceback (most recent call last):" in report
        assert "[rank 1] ValueError: boom from rank one" in stderr
    _assert_all_gone(pids)


def test_stubborn_worker_is_killed_after_the_grace_period(worker, tmp_path):
    # Rank 0 ignores SIGTERM: it must get SIGKILL once --grace-period has passed.
    launcher = _start(
        "-n",
        2,
        "--backend",
        "torch",
        "--grace-period",
        0.5,
        worker,
        "fail-exit3-stubborn",
        tmp_path,
    )
    pids = _wait_for_pids(launcher, tmp_path, range(2))
    stdout, stderr = launcher.communicate(timeout=30)
    assert launcher.returncode == 3, stderr
    _assert_all_gone(pids)


@pytest.mark.parametrize(
    "backend, sig", [("torch", signal.SIGTERM), ("torch", signal.SIGINT), ("mpi", signal.SIGTERM)]
)
def test_signals_are_forwarded_to_every_worker(worker, tmp_path, backend, sig):
    launcher = _start("-n", 2, "--backend", backend, worker, "wait-child", tmp_path)
    pids = _wait_for_pids(launcher, tmp_path, range(2))
    launcher.send_signal(sig)
    stdout, stderr = launcher.communicate(timeout=30)
    assert launcher.returncode == 128 + sig, stderr
    assert f"received {sig.name}; forwarding it to the workers" in stderr
    for rank in range(2):
        assert (tmp_path / f"signal{rank}").read_text() == str(int(sig))
    _assert_all_gone(pids)


@pytest.mark.parametrize("backend", ["torch", "mpi"])
def test_sigkilled_launcher_leaves_no_orphans(worker, tmp_path, backend):
    launcher = _start("-n", 2, "--backend", backend, worker, "wait-child", tmp_path)
    pids = _wait_for_pids(launcher, tmp_path, range(2))
    launcher.kill()
    launcher.communicate(timeout=30)
    _assert_all_gone(pids)


def test_mpi_backend_runs_an_mpi_job(worker, tmp_path):
    out, _ = _run(
        "-n", 2, "--backend", "mpi", "--log-dir", tmp_path / "logs", worker, "mpi", tmp_path
    )
    assert out.returncode == 0, out.stderr
    lines = sorted(line for line in out.stdout.splitlines() if "MPI rank" in line)
    # RANK (set by the relay) equals the MPI rank, and the ranks form one communicator.
    assert lines == [f"[rank {r}] MPI rank={r} size=2 sum=1" for r in range(2)]
    assert "MPI rank=1 size=2" in (tmp_path / "logs" / "rank_1.log").read_text()


def test_two_launchers_form_one_job(worker, tmp_path):
    port = _free_port()
    common = ["-n", 2, "--nnodes", 2, "--master-addr", "127.0.0.1", "--master-port", port]
    nodes = [
        _start(*common, "--node-rank", rank, worker, "rendezvous", tmp_path) for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=60) for node in nodes]
    for node, (_, stderr) in zip(nodes, outputs):
        assert node.returncode == 0, stderr
    node0, node1 = (_env_lines(stdout) for stdout, _ in outputs)
    assert sorted((v["RANK"], v["LOCAL_RANK"]) for v in node0) == [("0", "0"), ("1", "1")]
    assert sorted((v["RANK"], v["LOCAL_RANK"]) for v in node1) == [("2", "0"), ("3", "1")]
    assert {v["WORLD_SIZE"] for v in node0 + node1} == {"4"}
    assert "[rank 0] RENDEZVOUS [0, 1, 2, 3]" in outputs[0][0]
