"""Start and stop the real servers the reliability suite and benchmarks run against."""

import contextlib
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"


def free_port():
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_until(check, what, timeout=30.0, interval=0.05):
    """Poll check() until it is truthy; fail with a sentence naming what we waited for."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError) as error:
            last_error = error
        time.sleep(interval)
    raise TimeoutError(
        f"Gave up after {timeout:.0f} s waiting for {what} (last error: {last_error})"
    )


def children_of(pid):
    """Live child processes of pid (a killed worker may linger a moment as a zombie)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found


class Gunicorn:
    """The site under gunicorn on a loopback port, configured as a server would be."""

    def __init__(self, workers=2, database_url=None, settings=None, extra_env=None):
        self.folder = Path(tempfile.mkdtemp(prefix="superlists-gunicorn-"))
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.workers = workers
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.folder),
            "DJANGO_DEBUG_FALSE": "1",
            "DJANGO_SECRET_KEY": "reliability-" + "k" * 40 + "-x9Qz",
            "DJANGO_ALLOWED_HOSTS": f"{LOOPBACK},localhost",
            "SITE_URL": self.url,
            "EMAIL_HOST": LOOPBACK,
            "EMAIL_PORT": str(free_port()),  # nothing listens unless a test starts a server
            "DATABASE_URL": database_url or f"sqlite:///{self.folder / 'db.sqlite3'}",
            "STATIC_ROOT": str(self.folder / "static"),
            "LOG_DIR": str(self.folder / "logs"),
            # The suite sends far more login emails from one address than a person would.
            "LOGIN_EMAILS_PER_HOUR": "1000",
            **(extra_env or {}),
        }
        if settings:
            self.env["DJANGO_SETTINGS_MODULE"] = settings
        self.pidfile = self.folder / "gunicorn.pid"
        self.process = None

    def manage(self, *args):
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start(self):
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")
        self.log = open(self.folder / "gunicorn.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                str(VENV_BIN / "gunicorn"),
                "superlists.wsgi:application",
                "--bind",
                f"{LOOPBACK}:{self.port}",
                "--workers",
                str(self.workers),
                "--pid",
                str(self.pidfile),
                "--no-control-socket",
                "--access-logfile",
                "-" if os.environ.get("RELIABILITY_ACCESS_LOG") else "/dev/null",
            ],
            cwd=BASE_DIR,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: len(self.worker_pids()) == self.workers, "gunicorn workers")
        wait_until(lambda: urllib.request.urlopen(self.url + "/", timeout=2), "the home page")
        return self

    def worker_pids(self):
        return children_of(self.process.pid) if self.process else []

    def error_log(self):
        path = self.folder / "logs" / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


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


class Browser:
    """A cookie-keeping HTTP client that fills in the CSRF token like a browser form would."""

    CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

    def __init__(self, base_url):
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )
        self.token = None

    def get(self, path):
        status, headers, body = self._send(urllib.request.Request(self.base_url + path))
        found = self.CSRF_INPUT.search(body)
        if found:
            self.token = found.group(1)
        return status, headers, body

    def post(self, path, data):
        if self.token is None:
            self.get("/")
        payload = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self.token}).encode()
        return self._send(urllib.request.Request(self.base_url + path, data=payload))

    def _send(self, request):
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode(errors="replace")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Let the caller see a redirect as the answer to its POST."""

    def redirect_request(self, *args, **kwargs):
        return None
