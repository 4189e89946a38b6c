"""A worker that imports no torch, for launcher-only fault tests: `light_worker.py MODE DIR`.

Every rank writes DIR/attempt<restart count>_rank<rank> (the count as the workers' env module
reads it: the same function as `distkeras.distributed.restart_count()`), then:

    fail     rank 1 exits with code 3, the others wait to be stopped
    requeue  rank 0 exits 75 at once; rank 1 ignores SIGTERM and never ends by itself
    usr1     every rank exits 75 when SIGUSR1 arrives, and notes a SIGTERM in DIR/term<rank>
"""

import os
import signal
import sys
import time
from pathlib import Path

from launcher._envmod import env

mode, folder = sys.argv[1], Path(sys.argv[2])
info = env.detect()
rank, count = info.rank, info.restart_count


def note(name: str, text: str = "") -> None:
    (folder / f"{name}.tmp").write_text(text)
    os.replace(folder / f"{name}.tmp", folder / name)


def exit_75(signum, frame):
    # Under mpiexec the signal can arrive twice (Hydra signals the relay's process group,
    # and the relay forwards it too): a second one during shutdown must not kill us.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    sys.exit(75)


if mode == "usr1":
    signal.signal(signal.SIGUSR1, exit_75)
    signal.signal(signal.SIGTERM, lambda s, f: (note(f"term{rank}"), sys.exit(1)))
if mode == "requeue" and rank == 1:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
note(f"attempt{count}_rank{rank}", str(count))
if mode == "fail" and rank == 1:
    # Fail once every rank has noted its attempt, so the test sees all of them.
    others = [folder / f"attempt{count}_rank{r}" for r in range(info.world_size)]
    while not all(path.exists() for path in others):
        time.sleep(0.02)
    print(f"rank 1 gives up on attempt {count}", file=sys.stderr)
    sys.exit(3)
if mode == "requeue" and rank == 0:
    sys.exit(75)
time.sleep(60)
