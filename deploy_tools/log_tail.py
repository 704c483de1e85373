"""log_tail: run on the server by fab and the staging FTs: what a site's logs gained since a mark.

Usage: python log_tail.py mark LOG_FOLDER
       python log_tail.py read LOG_FOLDER [NAME=SIZE ...]

`mark` prints `SIZE NAME` for each *.log file in LOG_FOLDER. `read` prints, for each *.log
file, a line `==> superlists-log new NAME` and the text written after the SIZE the mark gave
it; for a file the mark does not have, or one now shorter than that (rotated), a line
`==> superlists-log all NAME` and its text; at most the last MAX_LINES lines either way, then
a blank line. A folder that does not exist prints nothing. Standard library only: it runs
with the server's /usr/bin/python3.
"""

import argparse
import sys
from collections import deque
from pathlib import Path

# Shown before each file's text; deploy_tools/serverlogs.py reads the output by it.
HEADER = "==> superlists-log "
MAX_LINES = 2000


def logs(folder):
    return sorted(path for path in Path(folder).glob("*.log") if path.is_file())


def mark(folder):
    for path in logs(folder):
        print(f"{path.stat().st_size} {path.name}")


def read(folder, marks):
    out = sys.stdout.buffer
    for path in logs(folder):
        start = marks.get(path.name, -1)
        new = 0 <= start <= path.stat().st_size
        out.write(f"{HEADER}{'new' if new else 'all'} {path.name}\n".encode())
        with open(path, "rb") as log:
            log.seek(start if new else 0)
            text = b"".join(deque(log, maxlen=MAX_LINES))
        out.write(text if not text or text.endswith(b"\n") else text + b"\n")
        out.write(b"\n")


def size_mark(word):
    """NAME=SIZE, as mark printed it the other way round."""
    name, _, size = word.rpartition("=")
    if not name or not size.isdigit():
        raise argparse.ArgumentTypeError(f"{word!r} is not NAME=SIZE (a log file's size in bytes)")
    return name, int(size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("mark").add_argument("folder")
    reading = commands.add_parser("read")
    reading.add_argument("folder")
    reading.add_argument("marks", nargs="*", type=size_mark)
    args = parser.parse_args()
    if args.command == "mark":
        mark(args.folder)
    else:
        read(args.folder, dict(args.marks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
