"""nginx_reload: run on the server by fab: HUP nginx and say whether it took the new configuration.

Usage: python nginx_reload.py ERROR_LOG PID_FILE SIGNAL_COMMAND [--timeout SECONDS]

A refused configuration leaves nginx running the old one, so nothing else would tell. Where
the deploy user cannot run `nginx -t` (it needs root for the pid file and the ports), this
runs SIGNAL_COMMAND (a shell command that sends nginx's master a HUP) and waits for the
master's answer: new workers (accepted: exits 0, printing nothing) or an [emerg] line in
ERROR_LOG after the HUP (refused: prints it and exits 1). A signal command that fails, or a
master that does neither within --timeout, is said the same way. Standard library only: it
runs with the server's /usr/bin/python3.
"""

import argparse
import os
import re
import subprocess
import sys
import time

EMERG = re.compile(rb"\[emerg\].*")


def master(pid_file):
    try:
        with open(pid_file) as text:
            return int(text.read().strip())
    except (OSError, ValueError):
        return None


def workers(pid):
    """The pids of the master's live (not zombie) children."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    state, parent = stat.read().rpartition(")")[2].split()[:2]
            except OSError:
                continue  # it exited while we looked
            if int(parent) == pid and state != "Z":
                found.add(int(entry))
    return found


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def logged_since(path, offset):
    """The first [emerg] line written to the error log after offset, or None."""
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            found = EMERG.search(log.read())
    except OSError:
        return None
    return found and found.group().decode(errors="replace").strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("error_log")
    parser.add_argument("pid_file")
    parser.add_argument("signal_command")
    parser.add_argument("--timeout", type=float, default=5)
    args = parser.parse_args()

    before, pid = size(args.error_log), master(args.pid_file)
    old = workers(pid) if pid else set()
    sent = subprocess.run(
        args.signal_command, shell=True, capture_output=True, text=True, check=False
    )
    if sent.returncode:
        said = " ".join((sent.stderr + sent.stdout).split())
        print(f"`{args.signal_command}` failed (exit status {sent.returncode}): {said}")
        return 1
    deadline = time.monotonic() + args.timeout
    while True:
        refused = logged_since(args.error_log, before)
        if refused:
            print(refused)
            return 1
        new = workers(pid) if pid else set()
        if new - old:
            return 0
        if time.monotonic() > deadline:
            print(
                f"nginx (master {pid or 'unknown: no pid in ' + args.pid_file}) neither started "
                f"new workers nor logged an [emerg] in {args.error_log} within {args.timeout:g} s "
                f"of `{args.signal_command}`"
            )
            return 1
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
