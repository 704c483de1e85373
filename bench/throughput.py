"""Requests per second through gunicorn (2 workers) with wrk, each page as a ratio of a bare view.

Usage: python bench/throughput.py [--seconds 10] [--rounds 3]
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rigs import REPO
from rigs.gunicorn import Gunicorn

TARGETS = {"home": 0.70, "list of 20 items": 0.40}


def wrk(url, seconds, cookie=None):
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url]
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url} answered {errors.group(1)} errors under load:\n{out}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), latency


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")

    with Gunicorn(workers=2, settings="bench.settings") as server:
        seeded = subprocess.run(
            [sys.executable, str(REPO / "bench" / "seed.py")],
            env=server.env,
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if seeded.returncode:
            sys.exit(f"Seeding the benchmark pages failed:\n{seeded.stderr}")
        pages = json.loads(seeded.stdout)
        cookie = f"sessionid={pages['session']}"
        plan = {
            "ceiling (bare view)": (server.url + "/bench/ceiling", None),
            "home": (server.url + "/", None),
            "list of 20 items": (server.url + pages["list"], None),
            "My lists, 20 lists": (server.url + pages["my_lists"], cookie),
        }
        results = {name: [] for name in plan}
        for round_number in range(args.rounds):
            # Interleaved, so drift in the machine's speed hits every page alike.
            for name, (url, page_cookie) in plan.items():
                results[name].append(wrk(url, args.seconds, page_cookie))
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)

    ceiling = sum(rps for rps, _ in results["ceiling (bare view)"]) / args.rounds
    print(f"{'page':<22} {'req/s':>8} {'p50':>9} {'p99':>9} {'x ceiling':>10}  target")
    for name, runs in results.items():
        rps = sum(r for r, _ in runs) / len(runs)
        last = runs[-1][1]
        target = f">= {TARGETS[name]:.2f}" if name in TARGETS else ""
        print(
            f"{name:<22} {rps:>8.0f} {last.get('50', '?'):>9} {last.get('99', '?'):>9} "
            f"{rps / ceiling:>10.2f}  {target}"
        )
    print(f"(wrk -t2 -c32 -d{args.seconds}s, {args.rounds} interleaved rounds, gunicorn 2 workers)")


if __name__ == "__main__":
    main()
