"""Runs several check scripts in one worker process: ``suite.py OUTDIR check [check...]``.

Starting a worker (importing torch and distkeras) costs far more than any check, so the
tests group their checks into one launched job per (backend, worker count).
"""

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    outdir, checks = sys.argv[1], sys.argv[2:]
    for check in checks:
        importlib.import_module(check).main(outdir)
