"""log_tail.py run for real on a log folder (its use by serverlogs: test_serverlogs.py)."""

import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from deploy_tools.log_tail import HEADER, MAX_LINES

SCRIPT = Path(__file__).resolve().parent.parent / "log_tail.py"


class LogTailTest(unittest.TestCase):
    def setUp(self):
        self.folder = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.folder)

    def log_tail(self, *args):
        command = [sys.executable, SCRIPT, args[0], self.folder, *args[1:]]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    def test_a_long_log_gives_its_last_lines_only(self):
        lines = [f"line {n}" for n in range(MAX_LINES + 500)]
        (self.folder / "error.log").write_text("\n".join(lines) + "\n")
        (self.folder / "notes.txt").write_text("not a log\n")
        shown = self.log_tail("read").stdout.splitlines()
        self.assertEqual(shown, [f"{HEADER}all error.log", *lines[-MAX_LINES:], ""])

    def test_only_the_text_after_the_mark_is_new(self):
        (self.folder / "error.log").write_text("before\n")
        self.assertEqual(self.log_tail("mark").stdout, "7 error.log\n")
        with open(self.folder / "error.log", "a") as log:
            log.write("after, without its newline yet")
        shown = self.log_tail("read", "error.log=7").stdout
        self.assertEqual(shown, f"{HEADER}new error.log\nafter, without its newline yet\n\n")

    def test_a_mark_that_is_not_name_equals_size_is_named(self):
        result = self.log_tail("read", "error.log:7")
        self.assertEqual(result.returncode, 2)
        self.assertIn("'error.log:7' is not NAME=SIZE (a log file's size in bytes)", result.stderr)


if __name__ == "__main__":
    unittest.main()
