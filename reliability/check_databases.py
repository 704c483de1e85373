"""The unit tests, fuzzing included, pass on PostgreSQL as well as on the default SQLite."""

# They run on SQLite everywhere else; production may run PostgreSQL, which refuses some input
# SQLite takes (a NUL byte in a text parameter is an error there, not an empty result).

import os
import re
import subprocess
import sys
import unittest

from rigs import REPO
from rigs.postgres import Postgres


class UnitTestsOnPostgresTest(unittest.TestCase):
    def test_unit_tests_pass_on_postgresql(self):
        with Postgres() as postgres:
            run = subprocess.run(
                [sys.executable, "manage.py", "test", "--exclude-tag=ft", "--noinput"],
                cwd=REPO,
                env={**os.environ, "DATABASE_URL": postgres.fresh_database()},
                capture_output=True,
                text=True,
                timeout=600,
            )
        summary = re.findall(r"^(Ran \d+ tests? in [\d.]+s|OK.*|FAILED.*)$", run.stderr, re.M)
        print(f"\n  PostgreSQL: {', '.join(summary)}")
        self.assertEqual(run.returncode, 0, run.stderr[-5000:])


if __name__ == "__main__":
    unittest.main()
