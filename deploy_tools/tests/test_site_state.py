"""site_state.py run for real on a site's folder in a temporary home."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "site_state.py"


class SiteStateTest(unittest.TestCase):
    def setUp(self):
        self.root = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.root)
        self.log = self.root / "deploys.log"

    def state(self, *options):
        return subprocess.run(
            [sys.executable, SCRIPT, self.root, self.log, *options],
            capture_output=True,
            text=True,
            check=False,
        )

    def release(self, name, built, mtime):
        folder = self.root / "releases" / name
        folder.mkdir(parents=True)
        if built:
            (folder / ".built").touch()
        os.utime(folder, (mtime, mtime))

    def test_before_the_first_deploy_nothing_is_live(self):
        result = self.state()
        self.assertEqual((result.returncode, result.stdout), (0, "live=\n"))

    def test_says_what_is_live_each_release_and_whether_it_finished_building(self):
        self.release("c0ffee000002", True, 2000)
        self.release("c0ffee000001", True, 1000)
        self.release("bad000000003", False, 3000)
        (self.root / "releases" / ".c0ffee000004.partial").mkdir()  # still being unpacked
        (self.root / "source").symlink_to("releases/c0ffee000002")
        self.assertEqual(
            self.state().stdout,
            "live=releases/c0ffee000002\n"
            "release=bad000000003 unbuilt 3000\n"
            "release=c0ffee000001 built 1000\n"
            "release=c0ffee000002 built 2000\n",
        )

    def test_the_last_lines_of_the_deploy_log_are_passed_on_whole(self):
        lines = [
            f"2026-12-0{n}T10:00:00Z\tdeployed\tc0ffee00000{n}\tedith@laptop\tFix #{n}"
            for n in range(5)
        ]
        self.log.write_text("\n".join(lines) + "\n")
        shown = self.state("--log-lines", "2").stdout.splitlines()
        self.assertEqual(shown[1:], [f"log={line}" for line in lines[-2:]])

    def test_a_site_folder_that_does_not_exist_is_named(self):
        missing = self.root / "nowhere"
        result = subprocess.run(
            [sys.executable, SCRIPT, missing, self.log], capture_output=True, text=True, check=False
        )
        self.assertEqual(
            (result.returncode, result.stdout, result.stderr),
            (1, "", f"site_state: {missing} is not a folder: nothing is deployed there.\n"),
        )


if __name__ == "__main__":
    unittest.main()
