"""Child processes that die with their parent: a `kill -9` of the demo (or of a step) leaves no orphans."""
from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux; a no-op elsewhere).

    Call it first thing in a child process (or as ``subprocess.Popen(preexec_fn=die_with_parent)``): unlike a
    cleanup handler in the parent, it also works when the parent is killed with SIGKILL.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
