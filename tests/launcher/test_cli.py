"""distkeras-launch argument parsing, configuration, backend choice and SLURM allocations."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from distkeras_launcher import cli, mpi, slurm

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("print('hi')\n")
    return str(path)


@pytest.fixture
def cpu_only(monkeypatch):
    """A machine without GPUs and without MPI, whatever this one has."""
    monkeypatch.setattr(cli, "visible_gpu_count", lambda environ: 0)
    monkeypatch.setattr(mpi, "mpi4py_available", lambda: False)


def test_defaults_and_script_arguments(script, cpu_only):
    config = cli.parse_args(["-n", "4", script, "--lr", "0.1", "-n", "2", "--backend", "x"], {})
    assert config == cli.LaunchConfig(
        script=script,
        script_args=("--lr", "0.1", "-n", "2", "--backend", "x"),  # all belong to the script
        nproc_per_node=4,
        backend="torch",
        nnodes=1,
        node_rank=0,
        master_addr="127.0.0.1",
        master_port=None,
    )
    assert config.world_size == 4
    assert [config.global_rank(i) for i in range(4)] == [0, 1, 2, 3]
    assert config.worker_argv() == [
        sys.executable,
        script,
        "--lr",
        "0.1",
        "-n",
        "2",
        "--backend",
        "x",
    ]
    assert config.get_config()["nproc_per_node"] == 4


def test_long_options_module_and_log_dir(cpu_only):
    config = cli.parse_args(
        [
            "--nproc_per_node",
            "2",
            "--log-dir",
            "logs",
            "--grace-period",
            "0.5",
            "-m",
            "pkg.train",
            "--x",
        ],
        {},
    )
    assert (config.nproc_per_node, config.log_dir, config.grace_period) == (2, "logs", 0.5)
    assert config.worker_argv() == [sys.executable, "-m", "pkg.train", "--x"]


def test_multi_node_ranks(script):
    config = cli.parse_args(
        ["-n", "3", "--nnodes", "2", "--node-rank", "1", "--master-addr", "10.0.0.1", script],
        {},
    )
    assert (config.nnodes, config.node_rank, config.world_size) == (2, 1, 6)
    assert [config.global_rank(i) for i in range(3)] == [3, 4, 5]
    assert (config.master_addr, config.master_port) == ("10.0.0.1", cli.DEFAULT_MULTINODE_PORT)
    assert config.backend == "torch"  # one launcher's mpiexec cannot span nodes


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--node-rank", "1"], "--node-rank needs --nnodes"),
        (["--nnodes", "2", "--node-rank", "2", "--master-addr", "h"], r"in \[0, --nnodes=2\)"),
        (["--nnodes", "2", "--node-rank", "0"], "--master-addr"),
        (["--master-port", "70000"], "--master-port"),
        (["--grace-period", "-1"], "--grace-period"),
        (
            ["--nnodes", "2", "--node-rank", "0", "--master-addr", "h", "--backend", "mpi"],
            "one node",
        ),
    ],
)
def test_inconsistent_arguments_raise(script, argv, message):
    with pytest.raises(ValueError, match=message):
        cli.parse_args([*argv, script], {})


def test_missing_script_raises(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        cli.parse_args([str(tmp_path / "nope.py")], {})


@pytest.mark.parametrize("argv", [["-n", "0", "x.py"], ["--backend", "gloo", "x.py"], []])
def test_malformed_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.parse_args(argv, {})
    assert info.value.code == 2
    assert "usage: distkeras-launch" in capsys.readouterr().err


def test_main_reports_errors_and_exits_2(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nope.py")]) == 2
    assert "distkeras-launch: error: The training script does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    "nproc, nnodes, gpus, mpi_ready, expected",
    [
        (4, 1, 0, True, "mpi"),  # CPU: MPI's all-reduce is the fast path
        (4, 1, 0, False, "torch"),  # CPU without MPI: gloo
        (4, 1, 2, True, "torch"),  # GPUs: NCCL
        (1, 1, 0, True, "torch"),  # one worker talks to nobody: skip mpiexec
        (4, 2, 0, True, "torch"),  # several nodes
    ],
)
def test_auto_backend(monkeypatch, nproc, nnodes, gpus, mpi_ready, expected):
    monkeypatch.setattr(cli, "visible_gpu_count", lambda environ: gpus)
    monkeypatch.setattr(mpi, "mpi4py_available", lambda: mpi_ready)
    monkeypatch.setattr(mpi, "find_mpiexec", lambda explicit=None, path=None: "/bin/mpiexec")
    assert cli.resolve_backend("auto", nproc, nnodes, {}) == expected
    assert cli.resolve_backend("torch", nproc, nnodes, {}) == "torch"


def test_explicit_mpi_backend_resolves_mpiexec(script):
    config = cli.parse_args(["-n", "2", "--backend", "mpi", script], {})
    assert config.backend == "mpi"
    assert os.access(config.mpiexec, os.X_OK)


def test_missing_mpiexec_names_the_package_to_install(script, monkeypatch):
    monkeypatch.setattr(mpi, "find_mpiexec", lambda explicit=None, path=None: None)
    with pytest.raises(RuntimeError, match=r"pip install distkeras\[mpi\]"):
        cli.parse_args(["--backend", "mpi", script], {})


def _fake_executable(folder: Path, name: str = "mpiexec") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_mpiexec_order(tmp_path, monkeypatch):
    on_path = _fake_executable(tmp_path / "bin")
    assert mpi.find_mpiexec(path=str(tmp_path / "bin")) == str(on_path)
    explicit = _fake_executable(tmp_path / "opt", "my-mpiexec")
    assert mpi.find_mpiexec(str(explicit), path="") == str(explicit)
    assert mpi.find_mpiexec(str(tmp_path / "missing"), path="") is None
    # Not on PATH: the mpich pip package's mpiexec, next to this interpreter (or next to the
    # interpreter a virtual environment links to), else located through the package.
    beside = mpi._mpiexec_beside_python()
    from_package = mpi._mpiexec_from_mpich_package()
    assert beside or from_package, "the test machine has `pip install mpich`"
    assert mpi.find_mpiexec(path=str(tmp_path / "empty")) == (beside or from_package)
    if beside:
        # A pyenv shim on PATH would re-resolve through bash each time: use the real binary.
        _fake_executable(tmp_path / "shims")
        assert mpi.find_mpiexec(path=str(tmp_path / "shims")) == beside


def test_mpich_package_lookup_finds_its_mpiexec():
    found = mpi._mpiexec_from_mpich_package()
    assert found is not None and Path(found).name == "mpiexec" and os.access(found, os.X_OK)


def test_visible_gpu_count(tmp_path):
    driver = tmp_path / "gpus"
    for bus in ("0000:01:00.0", "0000:02:00.0"):
        (driver / bus).mkdir(parents=True)
    count = cli.visible_gpu_count
    assert count({}, driver, tmp_path / "nodev") == 2
    assert count({"CUDA_VISIBLE_DEVICES": "1"}, driver, tmp_path) == 1
    assert count({"CUDA_VISIBLE_DEVICES": "0,1,2,3"}, driver, tmp_path) == 2
    assert count({"CUDA_VISIBLE_DEVICES": ""}, driver, tmp_path) == 0
    assert count({"CUDA_VISIBLE_DEVICES": "-1"}, driver, tmp_path) == 0
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (dev / name).touch()
    assert count({}, tmp_path / "no-driver", dev) == 2
    assert count({"CUDA_VISIBLE_DEVICES": "0"}, tmp_path / "no-driver", tmp_path / "none") == 0


def test_worker_environment():
    config = cli.LaunchConfig(
        script="t.py",
        nproc_per_node=2,
        nnodes=2,
        node_rank=1,
        master_addr="10.0.0.1",
        master_port=29500,
    )
    outer = {"RANK": "9", "LOCAL_WORLD_SIZE": "9", "KEEP": "me"}
    env = cli.worker_environment(config, outer, 29500, local_rank=1)
    assert env["KEEP"] == "me"
    expected = {
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "2",
        "MASTER_ADDR": "10.0.0.1",
        "MASTER_PORT": "29500",
        "DISTKERAS_LAUNCHER": "1",
        "DISTKERAS_BACKEND": "torch",
        "PYTHONUNBUFFERED": "1",
    }
    assert {k: env[k] for k in expected} == expected
    assert int(env["OMP_NUM_THREADS"]) >= 1
    assert cli.worker_environment(config, {"OMP_NUM_THREADS": "7"}, 1, 0)["OMP_NUM_THREADS"] == "7"
    # mpiexec's environment: the relays set the per-rank variables themselves.
    env = cli.worker_environment(config, outer, 29500, local_rank=None)
    assert "RANK" not in env and "LOCAL_WORLD_SIZE" not in env
    assert env["DISTKERAS_LAUNCHER"] == "1"


SLURM_TWO_NODES = {
    "SLURM_JOB_ID": "4242",
    "SLURM_NODELIST": "gpu[07-08]",
    "SLURM_STEP_NODELIST": "gpu[07-08]",
    "SLURM_NNODES": "2",
    "SLURM_NODEID": "1",
    "SLURM_STEP_ID": "0",
    "SLURM_STEP_TASKS_PER_NODE": "1(x2)",
}


def test_slurm_allocation_sets_nodes_and_master(script, cpu_only):
    config = cli.parse_args(["-n", "4", script], SLURM_TWO_NODES)
    assert (config.nnodes, config.node_rank, config.world_size) == (2, 1, 8)
    assert (config.master_addr, config.master_port) == ("gpu07", 10000 + 4242)
    assert config.slurm_job_id == "4242"
    assert [config.global_rank(i) for i in range(4)] == [4, 5, 6, 7]
    # Explicit flags win over the allocation.
    config = cli.parse_args(["--nnodes", "1", script], SLURM_TWO_NODES)
    assert (config.nnodes, config.master_port, config.slurm_job_id) == (1, None, None)
    config = cli.parse_args(["--master-port", "1234", script], SLURM_TWO_NODES)
    assert config.master_port == 1234


def test_slurm_single_node_allocation_stays_local(script, cpu_only):
    environ = {"SLURM_JOB_ID": "5", "SLURM_NODELIST": "n1", "SLURM_NNODES": "1"}
    config = cli.parse_args(["-n", "2", script], environ)
    assert (config.nnodes, config.master_addr, config.master_port) == (1, "127.0.0.1", None)


def test_slurm_misuse_is_explained():
    batch = {k: v for k, v in SLURM_TWO_NODES.items() if k != "SLURM_STEP_ID"}
    with pytest.raises(ValueError, match="srun --ntasks-per-node=1 distkeras-launch"):
        slurm.read_allocation(batch)
    crowded = {**SLURM_TWO_NODES, "SLURM_STEP_TASKS_PER_NODE": "4(x2)"}
    with pytest.raises(ValueError, match="several launchers per node"):
        slurm.read_allocation(crowded)
    with pytest.raises(ValueError, match="SLURM_NODEID"):
        slurm.read_allocation({**SLURM_TWO_NODES, "SLURM_NODEID": "2"})
    assert slurm.read_allocation({"SLURM_JOB_ID": "1"}) is None


def test_launcher_imports_neither_torch_nor_distkeras():
    code = (
        "import sys, distkeras_launcher.cli, distkeras_launcher.local, distkeras_launcher.mpi\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'distkeras')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


def test_help_shows_the_manual_pointer():
    out = subprocess.run(
        [sys.executable, "-m", "distkeras_launcher", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0
    assert "--nproc-per-node" in out.stdout and "--backend" in out.stdout
    assert "srun --ntasks-per-node=1 distkeras-launch" in cli.__doc__
