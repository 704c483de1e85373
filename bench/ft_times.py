"""Run the functional tests and print the wall time of each one and of the whole suite.

    .venv/bin/python bench/ft_times.py [extra `manage.py test` arguments]

It runs `manage.py test functional_tests --tag=ft` with the timing runner below, so it times
whatever target the tests would use (set STAGING_SERVER to time a staging run).
"""

import subprocess
import sys
import time
import unittest
from pathlib import Path

from superlists.test_runner import TestRunner

ROOT = Path(__file__).resolve().parent.parent


class TimingResult(unittest.TextTestResult):
    """A text result that also notes how long each test took, setUp to tearDown."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.times = []

    def startTest(self, test):
        self._started = time.perf_counter()
        super().startTest(test)

    def stopTest(self, test):
        self.times.append((time.perf_counter() - self._started, test.id()))
        super().stopTest(test)


class TimingRunner(TestRunner):
    """The usual test runner, printing a table of test times after the run."""

    def get_resultclass(self):
        return TimingResult

    def run_suite(self, suite, **kwargs):
        started = time.perf_counter()
        result = super().run_suite(suite, **kwargs)
        report(result.times, time.perf_counter() - started)
        return result


def report(times, suite_seconds):
    count = len(times)
    if not count:
        sys.stderr.write("No functional tests ran.\n")
        return
    lines = ["", "Functional test wall times (setUp to tearDown, slowest first):"]
    lines += [f"  {seconds:6.2f} s  {test_id}" for seconds, test_id in sorted(times, reverse=True)]
    in_tests = sum(seconds for seconds, _ in times)
    lines += [
        "",
        f"  {count} tests; sum of tests {in_tests:.2f} s, mean {in_tests / count:.2f} s",
        f"  suite wall (with browser starts and live servers) {suite_seconds:.2f} s, "
        f"{suite_seconds / count:.2f} s per test",
    ]
    sys.stderr.write("\n".join(lines) + "\n")


def main():
    started = time.perf_counter()
    command = [
        sys.executable,
        "manage.py",
        "test",
        "functional_tests",
        "--tag=ft",
        "--testrunner=bench.ft_times.TimingRunner",
        *sys.argv[1:],
    ]
    returncode = subprocess.run(command, cwd=ROOT, check=False).returncode
    sys.stderr.write(
        f"  whole command (with test database setup) {time.perf_counter() - started:.2f} s\n"
    )
    return returncode


if __name__ == "__main__":
    sys.exit(main())
