"""The site under gunicorn on a loopback port, for the reliability checks and benchmarks."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from rigs import REPO
from rigs.processes import LOOPBACK, children_of, free_port, wait_until

VENV_BIN = Path(sys.executable).parent


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
            cwd=REPO,
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
            cwd=REPO,
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
