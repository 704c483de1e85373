"""Run the functional tests and print the wall time of each one and of the whole suite.

    .venv/bin/python bench/ft_times.py [extra `manage.py test` arguments]

It runs `manage.py test functional_tests --tag=ft` with the timing runner in bench/timing.py,
so it times whatever target the tests would use (set STAGING_SERVER to time a staging run).
"""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    started = time.perf_counter()
    command = [
        sys.executable,
        "manage.py",
        "test",
        "functional_tests",
        "--tag=ft",
        "--testrunner=bench.timing.TimingRunner",
        *sys.argv[1:],
    ]
    returncode = subprocess.run(command, cwd=ROOT, check=False).returncode
    sys.stderr.write(
        f"  whole command (with test database setup) {time.perf_counter() - started:.2f} s\n"
    )
    return returncode


if __name__ == "__main__":
    sys.exit(main())
