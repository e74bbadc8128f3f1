"""simulator.cli: the `loyalty` command as a process."""

from __future__ import annotations

import subprocess
import sys

# Ctrl-C (SIGINT) sent while the command's modules load: the first import of pandas sends it.
INTERRUPTED_WHILE_LOADING = """
import builtins, os, signal
real = builtins.__import__
def interrupting(name, *args, **kwargs):
    if name == "pandas" and not getattr(interrupting, "done", False):
        interrupting.done = True
        os.kill(os.getpid(), signal.SIGINT)
    return real(name, *args, **kwargs)
builtins.__import__ = interrupting
from simulator.cli import main
main(["--help"])
"""


def test_ctrl_c_while_the_command_loads_ends_it_without_a_traceback():
    res = subprocess.run([sys.executable, "-c", INTERRUPTED_WHILE_LOADING], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 130 and res.stderr.strip() == "interrupted"
