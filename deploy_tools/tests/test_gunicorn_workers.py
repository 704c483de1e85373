"""gunicorn_workers.py run for real against a pre-forking master and its worker processes."""

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parent / "gunicorn_workers.py"
MASTER = HERE / "prefork_master.py"


class GunicornWorkersTest(unittest.TestCase):
    def setUp(self):
        self.root = Path(tempfile.mkdtemp())
        self.addCleanup(subprocess.run, ["rm", "-rf", str(self.root)], check=True)
        for name in ("old", "new"):
            (self.root / "releases" / name).mkdir(parents=True)
        self.source = self.root / "source"
        self.point_source_at("old")
        self.pidfile = self.root / "gunicorn.pid"
        self.pid_command = f"cat {self.pidfile} 2>/dev/null"
        self.addCleanup(self.stop_master)

    def point_source_at(self, name):
        self.source.unlink(missing_ok=True)
        self.source.symlink_to(f"releases/{name}")

    def start_command(self, *options):
        words = [sys.executable, MASTER, self.source, self.pidfile, *options]
        return " ".join(shlex.quote(str(word)) for word in words) + " >/dev/null 2>&1 &"

    def start_master(self, *options):
        subprocess.run(self.start_command(*options), shell=True, check=True)
        self.wait_for_master()

    def wait_for_master(self):
        for _ in range(100):
            if self.pidfile.exists() and self.pidfile.read_text().strip():
                return int(self.pidfile.read_text())
            time.sleep(0.05)
        self.fail("the pre-forking master never wrote its pid file")

    def stop_master(self):
        if self.pidfile.exists() and self.pidfile.read_text().strip():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(self.pidfile.read_text()), signal.SIGTERM)

    def reload(self, how, start=None, restart="false", timeout=10):
        command = [
            sys.executable, SCRIPT, "reload", self.pid_command, self.root / "releases" / "new",
            "--how", how, "--start", start or self.start_command(), "--restart", restart,
            "--timeout", str(timeout),
        ]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, check=False)

    def test_after_a_hup_it_waits_until_every_worker_runs_the_new_release(self):
        self.start_master()
        self.point_source_at("new")
        result = self.reload("hup")
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "2\n", ""))

    def test_a_worker_that_never_leaves_the_old_release_fails_naming_its_folder(self):
        self.start_master("--stuck")
        self.point_source_at("new")
        result = self.reload("hup", timeout=1)
        master = self.wait_for_master()
        old = self.root / "releases" / "old"
        self.assertEqual(
            (result.returncode, result.stdout),
            (1, f"master {master}; 2 of 2 workers still in: {old}\n"),
        )

    def test_gunicorn_down_is_started_and_waited_for(self):
        self.point_source_at("new")
        result = self.reload("hup")
        self.assertEqual((result.returncode, result.stdout), (0, "2\n"))

    def test_a_start_that_fails_is_named_with_what_it_said(self):
        start = "echo 'gunicorn-site: ERROR (no such process)' >&2; exit 7"
        result = self.reload("hup", start=start, timeout=0.5)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stdout,
            f"no master: `{self.pid_command}` printed no pid; `{start}` failed "
            f"(exit status 7): gunicorn-site: ERROR (no such process)\n",
        )

    def test_a_restart_waits_for_the_new_master_and_its_workers(self):
        self.start_master()
        first = self.wait_for_master()
        self.point_source_at("new")
        restart = f"kill {first}; while kill -0 {first} 2>/dev/null; do sleep 0.05; done; " + (
            self.start_command()
        )
        result = self.reload("restart", restart=restart)
        self.assertEqual((result.returncode, result.stdout), (0, "2\n"))
        self.assertNotEqual(self.wait_for_master(), first)

    def test_show_names_the_master_and_the_folder_of_each_worker(self):
        show = [sys.executable, SCRIPT, "show", self.pid_command]
        down = subprocess.run(show, capture_output=True, text=True, check=True)
        self.assertEqual(down.stdout, "master=\n")
        self.start_master()
        shown = subprocess.run(show, capture_output=True, text=True, check=True).stdout
        lines = shown.splitlines()
        self.assertEqual(lines[0], f"master={self.wait_for_master()}")
        self.assertEqual(
            [line.split(" ", 1)[1] for line in lines[1:]], [str(self.root / "releases" / "old")] * 2
        )


if __name__ == "__main__":
    unittest.main()
