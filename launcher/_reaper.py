"""The launcher's safety net, run as `python -S launcher/_reaper.py` in its own session.

It reads process-group ids, one per line, from the launcher through a pipe. At "done" it exits
quietly; at end-of-file without "done" the launcher died without cleaning up (SIGKILL, the OOM
killer, a crash), so it SIGKILLs every registered group: the workers where PR_SET_PDEATHSIG is
unavailable, and anything the workers started. Standard library only, no package imports.
"""

import contextlib
import os
import signal
import sys


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # only the launcher's disappearance ends us
    groups = set()
    for line in sys.stdin:
        line = line.strip()
        if line == "done":
            return 0
        if line.isdigit():
            groups.add(int(line))
    for group in groups:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
