"""The launcher installs as `distkeras_launcher`, never as a generic top-level `launcher`.

Builds the wheel from a copy of the sources (setuptools, no network) and reads what it would
put into site-packages, and checks the `distkeras-launch` command of this environment.
"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_installs_distkeras_launcher_and_no_launcher(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("distkeras", "launcher"):
        shutil.copytree(REPO / name, source / name, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("distkeras-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith("-info")}
    assert top_level == {"distkeras", "distkeras_launcher"}
    launcher_files = {Path(n).name for n in names if n.startswith("distkeras_launcher/")}
    source_files = {p.name for p in (REPO / "launcher").glob("*.py")}
    assert launcher_files == source_files  # every module, the reaper script included
    assert "distkeras-launch = distkeras_launcher.cli:main" in entry_points


def test_the_installed_command_runs_distkeras_launcher_from_anywhere(tmp_path):
    # Outside the checkout (no source folders on sys.path) only what is installed counts.
    code = (
        "import importlib.metadata, importlib.util, distkeras_launcher.mpi as m\n"
        "(script,) = [e for e in importlib.metadata.entry_points(group='console_scripts')\n"
        "             if e.name == 'distkeras-launch']\n"
        "assert script.value == 'distkeras_launcher.cli:main', script.value\n"
        "assert importlib.util.find_spec('launcher') is None\n"
        "assert m.mpiexec_command('mpiexec', 2, ['w'])[-4:-2] == ['-m', 'distkeras_launcher.mpi']\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, timeout=60)
