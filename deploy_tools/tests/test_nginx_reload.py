"""nginx_reload.py run for real against an nginx of its own on a free loopback port."""

import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from deploy_tools.tests.private_nginx import start_nginx
from rigs.processes import free_port

SCRIPT = Path(__file__).resolve().parent.parent / "nginx_reload.py"
REFUSED = "ssl_certificate /nonexistent.pem; ssl_certificate_key /nonexistent.pem;"


class NginxReloadTest(unittest.TestCase):
    def setUp(self):
        tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, tmp)
        self.site_conf, self.port = tmp / "site.conf", free_port()
        self.configure("")
        _, self.pid, self.error_log = start_nginx(
            self, tmp, f"access_log off; include {self.site_conf};"
        )
        self.hup = f"kill -HUP $(cat {self.pid})"

    def configure(self, extra):
        listen = f"127.0.0.1:{self.port}" + (" ssl" if extra else "")
        self.site_conf.write_text(f"server {{ listen {listen}; {extra} }}\n")

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
