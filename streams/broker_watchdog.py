"""Kills the embedded broker once the process that started it is gone, however it went.

`EmbeddedBroker` runs this file (standard library only, `python -I -S`) with the broker's pid and,
as standard input, the read end of a pipe whose write end only the starter holds: the kernel
closes that end when the starter dies, even killed outright. The broker binary cannot watch its
parent itself, and a parent-death signal (`PR_SET_PDEATHSIG`) follows the thread that started
the broker, not the process.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys


def watch(pid: int) -> None:
    try:
        broker = os.pidfd_open(pid)  # unlike a pid, it cannot come to name another process
    except ProcessLookupError:
        return  # the broker has already exited and been waited for
    ready, _, _ = select.select([sys.stdin, broker], [], [])  # end of file, or the broker's exit
    if broker not in ready:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(broker, signal.SIGKILL)  # memory only: nothing to save


if __name__ == "__main__":
    watch(int(sys.argv[1]))
