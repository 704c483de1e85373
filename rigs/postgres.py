"""A throwaway PostgreSQL cluster for the reliability checks."""

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from rigs.processes import LOOPBACK, free_port


class Postgres:
    """A throwaway PostgreSQL cluster on a loopback port, run as the postgres user."""

    def __init__(self):
        self.bindir = self._find_bindir()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="superlists-pg-"))
        shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"

    @staticmethod
    def _find_bindir():
        for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
            if (candidate / "initdb").exists():
                return candidate
        raise RuntimeError(
            "PostgreSQL is not installed: apt-get install postgresql (the suite starts its own "
            "server; nothing needs to be running)."
        )

    def _as_postgres(self, *args, **kwargs):
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, args)],
            check=True,
            capture_output=True,
            cwd=self.folder,
            **kwargs,
        )

    def start(self):
        self._as_postgres(self.bindir / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres")
        options = f"-c listen_addresses={LOOPBACK} -p {self.port} -k {self.folder} -c fsync=off"
        self._as_postgres(
            self.bindir / "pg_ctl", "-D", self.data, "-o", options, "-w", "-l",
            self.folder / "pg.log", "start",
        )  # fmt: skip
        self._psql("CREATE USER superlists PASSWORD 'superlists' CREATEDB")
        return self

    def _psql(self, sql):
        psql = [self.bindir / "psql", "-h", LOOPBACK, "-p", self.port, "-U", "postgres", "-c"]
        self._as_postgres(*psql, sql)

    def fresh_database(self):
        """A new empty database on this cluster, and its DATABASE_URL."""
        self.databases = getattr(self, "databases", 0) + 1
        name = f"superlists{self.databases}"
        self._psql(f"CREATE DATABASE {name} OWNER superlists")
        return f"postgres://superlists:superlists@{LOOPBACK}:{self.port}/{name}"

    def stop(self):
        with contextlib.suppress(subprocess.CalledProcessError):
            self._as_postgres(self.bindir / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
