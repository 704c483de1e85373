"""The test runner bench/ft_times.py runs the functional tests with: a table of their times."""

import sys
import time
import unittest

from superlists.test_runner import TestRunner


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
        suite_seconds = time.perf_counter() - started
        if self.parallel > 1:
            # Workers report each test's end, not its start: only the suite's wall time holds.
            count = result.testsRun
            per_test = suite_seconds / max(count, 1)
            sys.stderr.write(
                f"\n  {count} tests, {self.parallel} processes: "
                f"suite wall {suite_seconds:.2f} s, {per_test:.2f} s per test\n"
            )
        else:
            report(result.times, suite_seconds)
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
