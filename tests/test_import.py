"""Importing distkeras stays cheap: every worker of a launched job pays it at start-up."""

import subprocess
import sys


def test_import_does_not_load_the_torch_compiler():
    # torch._dynamo costs ~1.5 s of CPU per process; it must load only when compiling.
    code = "import sys, distkeras; print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
