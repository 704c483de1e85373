"""nginx_reload.py run for real against an nginx of its own on a free loopback port."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from rigs.processes import free_port, wait_until

SCRIPT = Path(__file__).resolve().parent.parent / "nginx_reload.py"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REFUSED = "ssl_certificate /nonexistent.pem; ssl_certificate_key /nonexistent.pem;"


class NginxReloadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.tmp)
        self.conf, self.pid = self.tmp / "nginx.conf", self.tmp / "nginx.pid"
        self.error_log = self.tmp / "error.log"
        self.port = free_port()
        self.configure("")
        self.nginx()
        wait_until(lambda: self.pid.exists(), "nginx's pid file", timeout=10)
        # Not `nginx -s stop`: that reads the configuration again, refused in some tests.
        self.addCleanup(os.kill, int(self.pid.read_text()), signal.SIGQUIT)
        self.hup = f"kill -HUP $(cat {self.pid})"

    def configure(self, extra):
        listen = f"127.0.0.1:{self.port}" + (" ssl" if extra else "")
        self.conf.write_text(
            f"pid {self.pid}; error_log {self.error_log}; events {{}}\n"
            f"http {{ access_log off; server {{ listen {listen}; {extra} }} }}\n"
        )

    def nginx(self, *args):
        prefix = ["-c", self.conf, "-p", self.tmp, "-e", self.error_log]
        subprocess.run([NGINX, *prefix, *args], check=True, capture_output=True)

    def reload(self, signal_command=None, timeout=10):
        hup = signal_command or self.hup
        command = [sys.executable, SCRIPT, self.error_log, self.pid, hup, "--timeout", str(timeout)]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    def test_an_accepted_configuration_says_nothing(self):
        # An [emerg] logged before this reload is not this reload's answer.
        with open(self.error_log, "a") as log:
            log.write("2026/12/06 10:00:00 [emerg] 1#1: an older refusal\n")
        self.configure("server_tokens off;")
        self.configure("")
        result = self.reload()
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))

    def test_a_refused_configuration_is_said_in_nginxs_words(self):
        self.configure(REFUSED)
        result = self.reload()
        self.assertEqual(result.returncode, 1)
        self.assertRegex(
            result.stdout, r'^\[emerg\] \d+#\d+: cannot load certificate "/nonexistent.pem"'
        )

    def test_a_signal_command_that_fails_is_named_with_what_it_said(self):
        command = "echo 'nginx: ERROR (no such process)'; exit 7"
        result = self.reload(command)
        self.assertEqual(
            (result.returncode, result.stdout),
            (1, f"`{command}` failed (exit status 7): nginx: ERROR (no such process)\n"),
        )

    def test_a_master_that_never_answers_is_named(self):
        result = self.reload("true", timeout=0.5)  # the HUP never reaches nginx
        master = self.pid.read_text().strip()
        self.assertEqual(
            (result.returncode, result.stdout),
            (
                1,
                f"nginx (master {master}) neither started new workers nor logged an [emerg] in "
                f"{self.error_log} within 0.5 s of `true`\n",
            ),
        )


if __name__ == "__main__":
    unittest.main()
