"""Package list for setuptools (everything else is in pyproject.toml).

The `launcher/` folder installs as the package `distkeras_launcher`: pyproject.toml's
`packages.find` can only install a folder under its own name, and a top-level `launcher`
would collide with other projects' packages.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["distkeras", "distkeras.*"]), "distkeras_launcher"],
    package_dir={"distkeras_launcher": "launcher"},
)
