"""gunicorn_workers: run on the server by fab: which release does each gunicorn worker run?

Usage: python gunicorn_workers.py show PID_COMMAND
       python gunicorn_workers.py reload PID_COMMAND RELEASE_FOLDER --how hup|restart|""
                                  --start COMMAND --restart COMMAND [--timeout SECONDS]

PID_COMMAND is the service manager's shell command printing the gunicorn master's pid (0,
nothing or an error while it is down). `show` prints `master=PID` and a `worker=PID FOLDER`
line for each worker. `reload` starts gunicorn if it is down, else restarts it (--how
restart), sends its master a HUP (--how hup: it forks new workers in the folder `source`
points at, and the old ones finish their requests) or leaves it be (--how ""); then it waits
until every worker runs in RELEASE_FOLDER, prints how many there are and exits 0, or at the
deadline says what it found instead and exits 1. Standard library only: it runs with the
server's /usr/bin/python3.
"""

import argparse
import os
import signal
import subprocess
import sys
import time


def run(command):
    """Run a shell command; what it said, if it failed."""
    result = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    said = " ".join((result.stderr + result.stdout).split())
    return (
        f"`{command}` failed (exit status {result.returncode}): {said}" if result.returncode else ""
    )


def master(pid_command):
    """The master's pid as the service manager knows it, or None while it is down."""
    # supervisorctl says "ERROR (no such process)", systemctl 0: either way, no master.
    printed = subprocess.run(
        pid_command, shell=True, capture_output=True, text=True, check=False
    ).stdout.strip()
    return int(printed) if printed.isdigit() and int(printed) > 0 else None


def workers(pid):
    """The live (not zombie) child processes of pid, with the folder each runs in."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                state, parent = stat.read().rpartition(")")[2].split()[:2]
            if int(parent) == pid and state != "Z":
                found[int(entry)] = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue  # it exited while we looked
    return dict(sorted(found.items()))


def show(pid_command):
    pid = master(pid_command)
    print(f"master={pid or ''}")
    for worker, folder in (workers(pid) if pid else {}).items():
        print(f"worker={worker} {folder}")
    return 0


def described(pid, found, release, pid_command, said):
    """What runs instead of every worker in the release, in words."""
    if not pid:
        return f"no master: `{pid_command}` printed no pid" + (f"; {said}" if said else "")
    if not found:
        return f"master {pid} has no workers"
    elsewhere = sorted({folder for folder in found.values() if folder != release})
    count = sum(folder != release for folder in found.values())
    return f"master {pid}; {count} of {len(found)} workers still in: {' '.join(elsewhere)}"


def reload(args):
    pid, said = master(args.pid_command), ""
    if pid is None:
        said = run(args.start)
    elif args.how == "restart":
        said, pid = run(args.restart), None
    elif args.how == "hup":
        os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + args.timeout
    while True:
        if pid is None or not os.path.exists(f"/proc/{pid}"):
            pid = master(args.pid_command)  # after a (re)start, or if the master died
        found = workers(pid) if pid else {}
        if found and all(folder == args.release for folder in found.values()):
            print(len(found))
            return 0
        if time.monotonic() > deadline:
            print(described(pid, found, args.release, args.pid_command, said))
            return 1
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show").add_argument("pid_command")
    reloading = commands.add_parser("reload")
    reloading.add_argument("pid_command")
    reloading.add_argument("release")
    reloading.add_argument("--how", choices=["hup", "restart", ""], required=True)
    reloading.add_argument("--start", required=True)
    reloading.add_argument("--restart", required=True)
    reloading.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    return show(args.pid_command) if args.command == "show" else reload(args)


if __name__ == "__main__":
    sys.exit(main())
