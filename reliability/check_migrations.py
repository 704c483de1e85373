"""Two app hosts migrating one PostgreSQL database at once: one applies, the other waits."""

import os
import subprocess
import sys
import unittest

import psycopg

from rigs import REPO
from rigs.postgres import Postgres
from superlists.management.commands.migrate import LOCK_KEY


def migrate(database_url):
    """A `manage.py migrate` as a deploy starts it on an app host, not waited for."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class MigrationLockTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.postgres = Postgres().start()
        cls.addClassCleanup(cls.postgres.stop)

    def test_a_migrate_waits_while_another_holds_the_databases_lock(self):
        url = self.postgres.fresh_database()
        with psycopg.connect(url, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
            waiting = migrate(url)
            first_line = waiting.stdout.readline()
            tables = holder.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone()[0]
            holder.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        output = first_line + waiting.communicate(timeout=120)[0]
        self.assertIn("Another migrate holds this database's lock: waiting.", first_line)
        self.assertEqual(tables, 0, "it migrated while the lock was held")
        self.assertEqual(waiting.returncode, 0, output)

    def test_two_hosts_migrating_at_once_both_succeed(self):
        # Without the lock, 2 of 6 such processes failed here: "relation lists_list already
        # exists", "Key (typname, typnamespace)=(accounts_logintoken, 2200) already exists".
        for _ in range(3):
            url = self.postgres.fresh_database()
            racers = [migrate(url), migrate(url)]
            outputs = [racer.communicate(timeout=120)[0] for racer in racers]
            for racer, output in zip(racers, outputs, strict=True):
                self.assertEqual(racer.returncode, 0, output[-3000:])


if __name__ == "__main__":
    unittest.main()
