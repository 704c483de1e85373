"""The release to ship: HEAD's git archive, or the working tree's, and what it leaves out."""

import hashlib
import io
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deploy_tools.errors import DeployError

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Release:
    """The code to ship: a tar archive and the name of its folder on the server."""

    name: str
    archive: bytes
    requirements_hash: str
    subject: str = ""


def _git(*args):
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, check=False)


def build(worktree=False):
    """Archive HEAD (or, with worktree, the working tree) and name its server folder."""
    if worktree:
        archive = worktree_archive()
        name = "wt-" + hashlib.sha256(archive).hexdigest()[:12]
        subject = "working tree of " + _git("log", "-1", "--format=%h %s").stdout.decode().strip()
    else:
        head = _git("rev-parse", "--verify", "-q", "HEAD^{commit}")
        if head.returncode:
            raise DeployError(
                "This repository has no commit to deploy yet: commit first, or ship the "
                "working tree with --worktree."
            )
        name = head.stdout.decode().strip()[:12]
        if _git("status", "--porcelain", "--untracked-files=no").stdout.strip():
            print(f"Note: deploying commit {name}; uncommitted changes are not included.")
        archive = _git("archive", "--format=tar", "HEAD").stdout
        subject = _git("log", "-1", "--format=%s").stdout.decode().strip()
    requirements = member(archive, "requirements.txt")
    if requirements is None:
        raise DeployError("The code to deploy has no requirements.txt at its top level.")
    return Release(name, archive, hashlib.sha256(requirements).hexdigest(), subject)


def uncommitted_migrations(release):
    """Sentences naming migration files of the working tree that the shipped commit lacks."""
    status = _git("status", "--porcelain", "--", "*/migrations/*.py").stdout.decode()
    with tarfile.open(fileobj=io.BytesIO(release.archive)) as tar:
        shipped = set(tar.getnames())
    found = []
    for line in status.splitlines():
        state, name = line[:2], line[3:].strip()
        if name.endswith("/"):  # a whole untracked migrations folder
            continue
        if name not in shipped:
            found.append(f"{name} is in your working tree but not committed.")
        elif state.strip() == "M":
            found.append(f"{name} has changes in your working tree that are not committed.")
    return found


# Never shipped from a working tree: local state, secrets and generated files.
_WORKTREE_SKIP = {".venv", "venv", "__pycache__", ".git", ".env", "db.sqlite3", "node_modules"}
_WORKTREE_SKIP_TOP = {"static", "logs", "media"}


def worktree_archive():
    """A reproducible tar of the tracked and untracked, not ignored, working-tree files."""
    listed = _git("ls-files", "-z", "-c", "-o", "--exclude-standard", "--", ".", ":!:.venv")
    if listed.returncode:
        raise DeployError(f"git could not list the working tree: {listed.stderr.decode().strip()}")
    names = sorted({n for n in listed.stdout.decode().split("\0") if n})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            parts = PurePosixPath(name).parts
            if _WORKTREE_SKIP & set(parts) or parts[0] in _WORKTREE_SKIP_TOP:
                continue
            if name.endswith((".pyc", ".sqlite3-wal", ".sqlite3-shm")):
                continue
            path = REPO / name
            if not path.exists():
                continue
            info = tar.gettarinfo(str(path), arcname=name)
            # Same files, same archive: the release name is a hash of it. Real mtimes stay,
            # because collectstatic only copies files newer than what it collected before.
            info.uid, info.gid, info.uname, info.gname = 0, 0, "", ""
            if info.isfile():
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def member(archive, name):
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        try:
            handle = tar.extractfile(name)
        except KeyError:
            return None
        return handle.read() if handle else None
