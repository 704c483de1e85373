"""An nginx of a test's own: its configuration, pid file and error log in the test's folder."""

import os
import shutil
import signal
import subprocess
from pathlib import Path

from rigs.processes import alive, wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def start_nginx(test, folder, http_block):
    """Start nginx with http_block on folder as its prefix, stopped when the test ends."""
    folder = Path(folder)
    conf, pid_file, error_log = folder / "nginx.conf", folder / "nginx.pid", folder / "error.log"
    # As root, nginx's workers would be nobody, who cannot enter the temporary folder.
    user = "user root; " if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}pid {pid_file}; error_log {error_log}; events {{}}\nhttp {{ {http_block} }}\n"
    )
    subprocess.run(
        [NGINX, "-c", conf, "-p", folder, "-e", error_log], check=True, capture_output=True
    )
    wait_until(pid_file.exists, "nginx's pid file", timeout=10)
    pid = int(pid_file.read_text())
    test.addCleanup(_stop, pid)
    return conf, pid_file, error_log


def _stop(pid):
    # Not `nginx -s stop`: that reads the configuration again, which a test may have broken.
    os.kill(pid, signal.SIGTERM)
    # Gone before its folder is removed: it deletes its pid file on the way out.
    wait_until(lambda: not alive(pid), "nginx to stop", timeout=10)
