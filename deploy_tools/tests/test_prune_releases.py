"""prune_releases.py run for real on a site's releases and venvs folders in a temporary home."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "prune_releases.py"
NOBODY = 65534


class PruneReleasesTest(unittest.TestCase):
    def setUp(self):
        self.root = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.root)
        self.releases, self.venvs = self.root / "releases", self.root / "venvs"
        for venv in ("v1", "v2", "v3"):
            (self.venvs / venv / "bin").mkdir(parents=True)
        for release, venv in (("aaa", "v1"), ("bbb", "v1"), ("ccc", "v2"), ("ddd", "")):
            (self.releases / release).mkdir(parents=True)
            (self.releases / release / "manage.py").write_text("")
            if venv:
                (self.releases / release / ".venv").symlink_to(self.venvs / venv)
        # Being unpacked by another deploy: not a release yet.
        (self.releases / ".eee.partial").mkdir()

    def prune(self, *kept, user=()):
        return subprocess.run(
            [*user, sys.executable, SCRIPT, self.releases, self.venvs, *kept],
            capture_output=True,
            text=True,
            check=False,
        )

    def left(self, folder):
        return sorted(entry.name for entry in folder.iterdir())

    def test_keeps_the_named_releases_and_their_venvs_and_removes_the_rest(self):
        result = self.prune("aaa", "bbb")
        self.assertEqual(result.returncode, 0, result.stdout)
        self.assertEqual(self.left(self.releases), [".eee.partial", "aaa", "bbb"])
        self.assertEqual(self.left(self.venvs), ["v1"])
        removed = [
            self.releases / "ccc",
            self.releases / "ddd",
            self.venvs / "v2",
            self.venvs / "v3",
        ]
        self.assertEqual(result.stdout, "".join(f"removed {path}\n" for path in removed))

    def test_a_release_that_is_a_link_goes_without_what_it_points_at(self):
        elsewhere = self.root / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "keep-me").write_text("")
        (self.releases / "fff").symlink_to(elsewhere)
        self.assertEqual(self.prune("aaa").returncode, 0)
        self.assertEqual(self.left(self.releases), [".eee.partial", "aaa"])
        self.assertEqual(self.left(elsewhere), ["keep-me"])

    def test_nothing_to_keep_is_refused(self):
        result = self.prune()
        self.assertEqual(result.returncode, 2)
        self.assertIn("the following arguments are required: kept", result.stderr)
        self.assertEqual(self.left(self.releases), [".eee.partial", "aaa", "bbb", "ccc", "ddd"])

    def test_a_missing_folder_is_named_and_nothing_is_removed(self):
        shutil.rmtree(self.venvs)
        result = self.prune("aaa")
        self.assertEqual(
            (result.returncode, result.stdout),
            (1, f"prune_releases: {self.venvs} is not a folder; nothing was removed.\n"),
        )
        self.assertEqual(self.left(self.releases), [".eee.partial", "aaa", "bbb", "ccc", "ddd"])

    def test_a_release_it_cannot_remove_is_named(self):
        # As the deploy user, who cannot empty a folder without write permission on it.
        user = []
        if os.geteuid() == 0:
            user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
            for path in (self.root, *self.root.rglob("*")):
                os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
        stuck = self.releases / "ccc"
        stuck.chmod(0o555)
        self.addCleanup(stuck.chmod, 0o755)
        result = self.prune("aaa", user=user)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stdout.splitlines()[-1],
            f"prune_releases: could not remove {stuck / 'manage.py'}: Permission denied.",
        )


if __name__ == "__main__":
    unittest.main()
