"""`python -m distkeras_launcher ...` is the same as `distkeras-launch ...`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
