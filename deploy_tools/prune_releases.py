"""prune_releases: run on the server by `fab deploy`: remove the releases and venvs not kept.

Usage: python prune_releases.py RELEASES_FOLDER VENVS_FOLDER KEPT_RELEASE [KEPT_RELEASE ...]

Removes every release in RELEASES_FOLDER not named, then every venv in VENVS_FOLDER that no
remaining release's .venv link points at. Hidden entries (a release still being unpacked,
.NAME.partial) are left alone. Prints what it removed; a folder it cannot remove is named
and it exits 1. Standard library only: it runs with the server's /usr/bin/python3.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path


def remove(path):
    """Remove a folder, or a link to one without touching what it points at."""
    if path.is_symlink():
        path.unlink()
        return

    def named(function, failed, info):
        # rmtree's own error names the file relative to its folder.
        raise OSError(info[1].errno, info[1].strerror, failed) from info[1]

    shutil.rmtree(path, onerror=named)


def visible(folder):
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))


def prune(releases, venvs, kept):
    """Remove, and say, in order: the releases not kept, then the venvs none of them use."""
    for release in visible(releases):
        if release.is_dir() and release.name not in kept:
            remove(release)
            yield release
    used = {
        os.path.realpath(release / ".venv")
        for release in visible(releases)
        if (release / ".venv").is_symlink()
    }
    for venv in visible(venvs):
        if os.path.realpath(venv) not in used:
            remove(venv)
            yield venv


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("releases", type=Path)
    parser.add_argument("venvs", type=Path)
    parser.add_argument("kept", nargs="+")
    args = parser.parse_args()
    for folder in (args.releases, args.venvs):
        if not folder.is_dir():
            print(f"prune_releases: {folder} is not a folder; nothing was removed.")
            return 1
    try:
        for removed in prune(args.releases, args.venvs, set(args.kept)):
            print(f"removed {removed}")
    except OSError as error:
        print(f"prune_releases: could not remove {error.filename}: {error.strerror}.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
