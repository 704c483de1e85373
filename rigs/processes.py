"""The rigs' one way each to find a free port, to poll, and to scan live processes."""

import contextlib
import socket
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
DEAD = ("Z", "X")  # an exited process can linger as a zombie for a while


def free_port(host=LOOPBACK):
    """A port on host that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(check, what, timeout=30.0, interval=0.05, failure=None):
    """Poll check() until it is truthy; fail with a sentence naming what we waited for.

    failure, when given, makes the exception raised at the timeout (the rig's own sentence).
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            result = check()
            if result:
                return result
        except OSError as error:  # urllib's URLError is one too
            last_error = error
        if time.monotonic() > deadline:
            if failure:
                raise failure() from None
            raise TimeoutError(
                f"Gave up after {timeout:.0f} s waiting for {what} (last error: {last_error})"
            )
        time.sleep(interval)


def process_table():
    """(pid, parent pid, state) of every process, read from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            yield int(stat.parent.name), int(fields[1]), fields[0]


def alive(pid):
    """True while pid is a live process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in DEAD


def children_of(pid):
    """Live child processes of pid (a killed worker may linger a moment as a zombie)."""
    return [
        child for child, parent, state in process_table() if parent == pid and state not in DEAD
    ]


def descendants(pid):
    """The live processes below pid (a daemon's workers)."""
    children, states = {}, {}
    for child, parent, state in process_table():
        children.setdefault(parent, []).append(child)
        states[child] = state
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return [p for p in found if states[p] not in DEAD]


def owned_by(uid):
    """The live processes run by uid."""
    found = []
    for pid, _, state in process_table():
        with contextlib.suppress(OSError):
            if state not in DEAD and Path(f"/proc/{pid}").stat().st_uid == uid:
                found.append(pid)
    return found
