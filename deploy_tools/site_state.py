"""site_state: run on the server by fab: which releases a site has, which is live, its deploy log.

Usage: python site_state.py SITE_ROOT DEPLOY_LOG [--built MARKER] [--log-lines N]

Prints, one fact a line, for fab's ServerState.parse:
  live=releases/NAME           where the site's `source` link points (empty before a deploy)
  release=NAME built|unbuilt MTIME   each release folder; built when it holds MARKER
  log=TIME<TAB>EVENT<TAB>...   the last N lines of DEPLOY_LOG, if there is one
A SITE_ROOT that does not exist is said on stderr, with exit status 1. Standard library only:
it runs with the server's /usr/bin/python3.
"""

import argparse
import os
import sys
from collections import deque
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("deploy_log", type=Path)
    parser.add_argument("--built", default=".built")
    parser.add_argument("--log-lines", type=int, default=200)
    args = parser.parse_args()
    if not args.root.is_dir():
        print(
            f"site_state: {args.root} is not a folder: nothing is deployed there.", file=sys.stderr
        )
        return 1
    source = args.root / "source"
    print(f"live={os.readlink(source) if source.is_symlink() else ''}")
    releases = args.root / "releases"
    for release in sorted(releases.iterdir() if releases.is_dir() else []):
        if release.name.startswith(".") or not release.is_dir():
            continue  # a release still being unpacked, or not a release at all
        built = "built" if (release / args.built).is_file() else "unbuilt"
        print(f"release={release.name} {built} {int(release.stat().st_mtime)}")
    if args.deploy_log.is_file():
        with open(args.deploy_log, encoding="utf-8", errors="replace") as log:
            for line in deque(log, maxlen=args.log_lines):
                print(f"log={line.rstrip(chr(10))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
