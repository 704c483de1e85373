"""Run the functional tests and print the wall time of each one and of the whole suite.

    .venv/bin/python bench/ft_times.py [extra `manage.py test` arguments]
    .venv/bin/python bench/ft_times.py --baseline DIR [--rounds 5] [extra arguments]

It runs `manage.py test functional_tests --tag=ft` with the timing runner in bench/timing.py,
so it times whatever target the tests would use (set STAGING_SERVER to time a staging run).
It also prints the CPU time of everything the run started (Python, chromedriver, every
Chromium process: on Linux it adopts and reaps them), which a busy machine disturbs far less
than wall time, and says so if any of them is still running afterwards.

With --baseline, DIR is another checkout of the project (for example
`git worktree add /tmp/baseline origin/main`): each round runs the suite there and here, one
after the other (which goes first alternates), and prints both, with the load average, so a
change is compared with its baseline under the same load.
"""

import argparse
import ctypes
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PR_SET_CHILD_SUBREAPER = 36
# What a report prints, per test: the mean of the tests' own times (serial runs only), the
# suite's wall time over its tests, and the whole tree's CPU time over its tests.
FIGURES = {
    "mean": re.compile(r" mean (\d+\.\d+) s"),
    "wall": re.compile(r"suite wall .*, (\d+\.\d+) s per test"),
    "cpu": re.compile(r"CPU time .*, (\d+\.\d+) s per test"),
    "command": re.compile(r"whole command .* (\d+\.\d+) s"),
    "left running": re.compile(r"(\d+) process\(es\) the run started are still running"),
}


def adopt_orphans():
    """Become the reaper of the processes the run leaves behind (Linux); False elsewhere."""
    # Chromium's processes outlive chromedriver's wait: reparented here instead of to init,
    # and reaped here, their CPU time counts in this process's RUSAGE_CHILDREN.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap(seconds=5.0):
    """Reap every finished process of the run; the number still running after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
        if pid == 0 and time.monotonic() > deadline:
            with open(f"/proc/self/task/{os.getpid()}/children") as children:
                return len(children.read().split())
        if pid == 0:
            time.sleep(0.05)


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(checkout, arguments, echo=True):
    """Run the timed suite in checkout; return its exit code and its report (stderr)."""
    counted = adopt_orphans()
    cpu_before = children_cpu()
    started = time.perf_counter()
    command = [
        sys.executable,
        "manage.py",
        "test",
        "functional_tests",
        "--tag=ft",
        "--testrunner=bench.timing.TimingRunner",
        *arguments,
    ]
    with subprocess.Popen(
        command,
        cwd=checkout,
        stdout=None if echo else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        lines = []
        for line in process.stderr:
            lines.append(line)
            if echo:
                sys.stderr.write(line)
    wall = time.perf_counter() - started
    left = reap()
    report = [f"  whole command (with test database setup) {wall:.2f} s"]
    tests = re.search(r"^Ran (\d+) tests? in", "".join(lines), re.MULTILINE)
    if counted and tests:
        cpu, count = children_cpu() - cpu_before, int(tests[1])
        report.append(
            f"  CPU time of the command and every process it started {cpu:.2f} s, "
            f"{cpu / max(count, 1):.2f} s per test"
        )
    if left:
        report.append(f"  {left} process(es) the run started are still running")
    sys.stderr.write("\n".join(report) + "\n")
    return process.returncode, "".join(lines) + "\n".join(report)


def figures(report):
    """The figures a report prints (see FIGURES), by name."""
    found = {name: pattern.search(report) for name, pattern in FIGURES.items()}
    return {name: float(match[1]) for name, match in found.items() if match}


def shown(figures):
    per_test = [f"{key} {figures[key]:.2f}" for key in ("mean", "wall", "cpu") if key in figures]
    left = f"; {figures['left running']:.0f} left running" if figures.get("left running") else ""
    return f"{', '.join(per_test)} s per test; whole command {figures['command']:.2f} s{left}"


def compare(baseline, rounds, arguments):
    """Alternate the baseline's suite and this one's; print each round and the medians."""
    seen = {"baseline": [], "this": []}
    failed = 0
    for number in range(rounds):
        order = [("baseline", baseline), ("this", ROOT)]
        for name, checkout in order if number % 2 == 0 else order[::-1]:
            load = os.getloadavg()[0]
            returncode, report = run(checkout, arguments, echo=False)
            if returncode:
                failed += 1
                sys.stderr.write(report[-3000:])
            seen[name].append(figures(report))
            print(f"round {number + 1} {name:<8} load {load:5.2f}: {shown(seen[name][-1])}")
    for name, rows in seen.items():
        medians = {key: statistics.median(row.get(key, 0) for row in rows) for key in rows[0]}
        print(f"median of {rounds} {name:<8}: {shown(medians)}", flush=True)
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    options, arguments = parser.parse_known_args()
    if options.baseline:
        return compare(options.baseline.resolve(), options.rounds, arguments)
    return run(ROOT, arguments)[0]


if __name__ == "__main__":
    sys.exit(main())
