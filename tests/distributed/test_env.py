"""Environment detection: distkeras-launch, torchrun, Open MPI, MPICH, SLURM; hostlists."""

import subprocess
import sys
from pathlib import Path

import pytest

from distkeras.distributed import env

ENV_PY = Path(env.__file__)


def test_nothing_launched_us():
    info = env.detect({})
    assert info == env.DistEnv()
    assert (info.rank, info.world_size, info.launcher, info.backend) == (0, 1, "none", None)
    assert not info.is_distributed and info.is_chief


def test_detect_reads_os_environ_by_default(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "DISTKERAS_LAUNCHER", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SLURM_STEP_ID", raising=False)
    monkeypatch.delenv("SLURM_STEPID", raising=False)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert env.detect().rank == 2


def test_distkeras_launcher():
    info = env.detect(
        {
            "DISTKERAS_LAUNCHER": "1",
            "DISTKERAS_BACKEND": "mpi",
            "RANK": "5",
            "WORLD_SIZE": "8",
            "LOCAL_RANK": "1",
            "LOCAL_WORLD_SIZE": "4",
            "MASTER_ADDR": "10.1.2.3",
            "MASTER_PORT": "29501",
            "DISTKERAS_RESTART_COUNT": "2",
            # An outer MPI or SLURM context never overrides our launcher.
            "OMPI_COMM_WORLD_RANK": "0",
            "OMPI_COMM_WORLD_SIZE": "1",
        }
    )
    assert info == env.DistEnv(5, 8, 1, 4, "10.1.2.3", 29501, "distkeras", "mpi", 2)
    assert info.is_distributed and not info.is_chief


def test_torchrun():
    info = env.detect(
        {
            "RANK": "3",
            "WORLD_SIZE": "4",
            "LOCAL_RANK": "1",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "node0",
            "MASTER_PORT": "29500",
            "PMI_RANK": "0",
            "PMI_SIZE": "1",
        }
    )
    assert info == env.DistEnv(3, 4, 1, 2, "node0", 29500, "torchrun", "torch", 0)


def test_hand_written_env_init_assumes_one_node():
    info = env.detect({"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"})
    assert (info.local_rank, info.local_world_size, info.launcher) == (1, 2, "torchrun")


def test_backend_override_applies_to_any_launcher():
    base = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}
    assert env.detect({**base, "DISTKERAS_BACKEND": "MPI"}).backend == "mpi"
    assert env.detect({**base, "DISTKERAS_BACKEND": "auto"}).backend == "torch"
    with pytest.raises(ValueError, match="DISTKERAS_BACKEND"):
        env.detect({**base, "DISTKERAS_BACKEND": "nccl"})


def test_open_mpi():
    info = env.detect(
        {
            "OMPI_COMM_WORLD_RANK": "6",
            "OMPI_COMM_WORLD_SIZE": "8",
            "OMPI_COMM_WORLD_LOCAL_RANK": "2",
            "OMPI_COMM_WORLD_LOCAL_SIZE": "4",
            "PMI_RANK": "0",
            "PMI_SIZE": "1",
        }
    )
    assert info == env.DistEnv(6, 8, 2, 4, None, None, "openmpi", "mpi", 0)


def test_open_mpi_single_node_gets_loopback_master():
    info = env.detect(
        {
            "OMPI_COMM_WORLD_RANK": "1",
            "OMPI_COMM_WORLD_SIZE": "2",
            "OMPI_COMM_WORLD_LOCAL_RANK": "1",
            "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
        }
    )
    assert (info.master_addr, info.master_port) == ("127.0.0.1", None)


def test_mpich_hydra():
    info = env.detect(
        {
            "PMI_RANK": "1",
            "PMI_SIZE": "4",
            "MPI_LOCALRANKID": "1",
            "MPI_LOCALNRANKS": "2",
            "SLURM_PROCID": "0",
            "SLURM_NTASKS": "1",
            "SLURM_STEP_ID": "0",
        }
    )
    assert info == env.DistEnv(1, 4, 1, 2, None, None, "mpich", "mpi", 0)


def test_mpich_started_by_srun_takes_local_rank_from_slurm():
    info = env.detect(
        {
            "PMI_RANK": "3",
            "PMI_SIZE": "4",
            "SLURM_LOCALID": "1",
            "SLURM_NODEID": "1",
            "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
        }
    )
    assert (info.local_rank, info.local_world_size, info.launcher) == (1, 2, "mpich")


def test_slurm_step():
    info = env.detect(
        {
            "SLURM_JOB_ID": "123456",
            "SLURM_STEP_ID": "0",
            "SLURM_PROCID": "5",
            "SLURM_NTASKS": "7",
            "SLURM_LOCALID": "1",
            "SLURM_NODEID": "2",
            "SLURM_STEP_NODELIST": "gpu-a[07-09]",
            "SLURM_NODELIST": "other[1-9]",
            "SLURM_STEP_TASKS_PER_NODE": "3,2(x2)",
        }
    )
    assert info == env.DistEnv(5, 7, 1, 2, "gpu-a07", 10000 + 123456 % 20000, "slurm", None, 0)


def test_slurm_falls_back_to_job_nodelist_and_explicit_master():
    base = {
        "SLURM_JOB_ID": "77",
        "SLURM_STEPID": "3",
        "SLURM_PROCID": "0",
        "SLURM_NTASKS": "2",
        "SLURM_LOCALID": "0",
        "SLURM_NODELIST": "n[3-4]",
    }
    info = env.detect(base)
    assert (info.master_addr, info.master_port, info.local_world_size) == ("n3", 10077, 2)
    info = env.detect({**base, "MASTER_ADDR": "login", "MASTER_PORT": "4000"})
    assert (info.master_addr, info.master_port) == ("login", 4000)


def test_slurm_batch_script_is_a_single_process():
    # sbatch exports SLURM_PROCID=0 and the job's SLURM_NTASKS to the batch script itself,
    # but only srun steps (SLURM_STEP_ID) run one task per worker.
    info = env.detect(
        {"SLURM_JOB_ID": "9", "SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_NODELIST": "n1"}
    )
    assert (info.launcher, info.world_size) == ("none", 1)


def test_restart_count():
    assert env.detect({"DISTKERAS_RESTART_COUNT": "3"}).restart_count == 3
    with pytest.raises(ValueError, match="DISTKERAS_RESTART_COUNT"):
        env.detect({"DISTKERAS_RESTART_COUNT": "x"})


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"RANK": "two", "WORLD_SIZE": "2"}, "RANK must be an integer"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, r"RANK must be in \[0, WORLD_SIZE=2\)"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE must be >= 1"),
        ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "3", "LOCAL_WORLD_SIZE": "2"}, "LOCAL"),
        ({"RANK": "0", "WORLD_SIZE": "1", "MASTER_PORT": "70000"}, "MASTER_PORT"),
        ({"PMI_RANK": "4", "PMI_SIZE": "4"}, "PMI_RANK"),
    ],
)
def test_invalid_values_name_the_variable(variables, message):
    with pytest.raises(ValueError, match=message):
        env.detect(variables)


@pytest.mark.parametrize(
    "hostlist, hosts",
    [
        ("node01", ["node01"]),
        ("a,b , c", ["a", "b", "c"]),
        (
            "node[01-04,07],gpu-a[1-2]",
            ["node01", "node02", "node03", "node04", "node07", "gpu-a1", "gpu-a2"],
        ),
        ("n[8-10]", ["n8", "n9", "n10"]),
        ("n[008-010]", ["n008", "n009", "n010"]),
        ("rack[1-2]-n[1,3]", ["rack1-n1", "rack1-n3", "rack2-n1", "rack2-n3"]),
        ("x[5]y,z", ["x5y", "z"]),
    ],
)
def test_expand_hostlist(hostlist, hosts):
    assert env.expand_hostlist(hostlist) == hosts
    assert env.first_host(hostlist) == hosts[0]


@pytest.mark.parametrize("hostlist", ["node[1-2", "node1-2]", "n[a-b]", "n[3-1]", "n[1-]", ""])
def test_bad_hostlists_raise(hostlist):
    with pytest.raises(ValueError, match="hostlist"):
        env.first_host(hostlist)


def test_tasks_per_node_and_port():
    assert env.parse_tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    assert env.parse_tasks_per_node("4") == [4]
    with pytest.raises(ValueError, match="tasks-per-node"):
        env.parse_tasks_per_node("2(3)")
    assert env.slurm_master_port("20000") == 10000
    assert env.slurm_master_port("123_4") == 10123  # array jobs: the leading number
    assert 10000 <= env.slurm_master_port(99999999) < 30000


def test_config_round_trip():
    info = env.DistEnv(1, 2, 1, 2, "h", 5, "torchrun", "torch", 0)
    assert env.DistEnv.from_config(info.get_config()) == info


def test_env_module_stands_alone_without_torch():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('standalone_env', {str(ENV_PY)!r})\n"
        "mod = importlib.util.module_from_spec(spec)\n"
        "sys.modules['standalone_env'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "assert mod.detect({'PMI_RANK': '0', 'PMI_SIZE': '2'}).backend == 'mpi'\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'distkeras')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
