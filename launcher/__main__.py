"""`python -m launcher ...` is the same as `distkeras-launch ...`."""

import sys

from launcher.cli import main

if __name__ == "__main__":
    sys.exit(main())
