"""A pre-forking master as gunicorn is one, for the tests of the scripts that watch it.

Usage: python prefork_master.py SOURCE PIDFILE [--stuck]

It forks two workers in the folder the SOURCE link points at (as gunicorn's --chdir through
`source` does), writes its pid to PIDFILE, and on a HUP forks two new workers wherever SOURCE
points then and stops the old ones. --stuck: a master whose HUP forks the new workers where
the old ones ran, so they never run the new release. TERM stops it and its workers.
"""

import contextlib
import os
import signal
import sys
from pathlib import Path

WORKERS = 2


def main():
    source, pidfile = sys.argv[1], Path(sys.argv[2])
    stuck = "--stuck" in sys.argv[3:]
    with contextlib.suppress(PermissionError):
        os.setsid()  # its own process group, so a test can stop the whole tree at once
    workers = []

    def fork_workers():
        if not stuck:
            os.chdir(os.path.realpath(source))
        for _ in range(WORKERS):
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGHUP, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                while True:
                    signal.pause()
            workers.append(pid)

    def stop(pids):
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)

    def hup(*_):
        old = list(workers)
        workers.clear()
        fork_workers()
        stop(old)

    def term(*_):
        stop(workers)
        pidfile.unlink(missing_ok=True)
        sys.exit(0)

    os.chdir(os.path.realpath(source))
    fork_workers()
    signal.signal(signal.SIGHUP, hup)
    signal.signal(signal.SIGTERM, term)
    pidfile.write_text(f"{os.getpid()}\n")
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
