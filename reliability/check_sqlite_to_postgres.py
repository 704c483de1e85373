"""A SQLite site's data moved to PostgreSQL with the README's commands: all of it, and usable."""

import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from rigs import REPO
from rigs.postgres import Postgres

# The README's commands ("When one server isn't enough"), as a person runs them on an app host.
DUMP = (
    "dumpdata --natural-foreign --natural-primary --exclude contenttypes "
    "--exclude auth.permission --exclude admin.logentry --indent 1 -o {dump}"
)
LOAD = "loaddata {dump}"

# A site's life: owners, shared lists, done items, a session (someone logged in).
SEED = """
from django.contrib.sessions.backends.db import SessionStore
from accounts.models import User
from lists.models import Item, List
edith = User.objects.create(email="edith@example.com")
oni = User.objects.create(email="oni@example.com")
for n in range(3):
    shared = List.objects.create(owner=edith)
    shared.shared_with.add(oni)
    for i in range(5):
        Item.objects.create(list=shared, text=f"item {n}.{i}", done=i % 2 == 0)
Item.objects.create(list=List.objects.create(), text="an anonymous list's item")
session = SessionStore()
session["_auth_user_id"] = str(edith.pk)
session.create()
"""

# Everything a visitor sees, in an order both databases agree on.
READ = """
import json
from accounts.models import User
from django.contrib.sessions.models import Session
from lists.models import Item, List
print(json.dumps({
    "users": sorted(User.objects.values_list("email", flat=True)),
    "lists": sorted(
        (l.id, l.owner.email if l.owner else None, sorted(u.email for u in l.shared_with.all()))
        for l in List.objects.all()
    ),
    "items": sorted(Item.objects.values_list("list_id", "text", "done")),
    "sessions": Session.objects.count(),
}))
"""
# A new row on the new database: an id sequence loaddata left at 1 would collide here.
WRITE = """
from accounts.models import User
from lists.models import Item, List
User.objects.create(email="new@example.com")
Item.objects.create(list=List.objects.first(), text="written after the move")
"""


def manage(database_url, *args, code=None):
    run = subprocess.run(
        [sys.executable, "manage.py", *args, *(["-c", code] if code else [])],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if run.returncode:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{run.stderr[-3000:]}")
    return run.stdout


def seen(output):
    """READ's line of the shell's output (Django may print other lines first)."""
    return json.loads(next(line for line in output.splitlines() if line.startswith('{"users"')))


def move(folder, target):
    """A seeded SQLite site in folder moved to target: what a visitor saw before, after, loaded."""
    sqlite = f"sqlite:///{Path(folder) / 'db.sqlite3'}"
    dump = Path(folder) / "site.json"
    manage(sqlite, "migrate", "-v", "0")
    manage(sqlite, "shell", code=SEED)
    before = seen(manage(sqlite, "shell", code=READ))
    manage(sqlite, *DUMP.format(dump=dump).split())
    manage(target, "migrate", "-v", "0")
    loaded = manage(target, *LOAD.format(dump=dump).split())
    after = seen(manage(target, "shell", code=READ))
    manage(target, "shell", code=WRITE)
    return before, after, loaded


class SqliteToPostgresTest(unittest.TestCase):
    def test_the_readme_commands_move_every_row_and_the_site_writes_on(self):
        with tempfile.TemporaryDirectory() as folder, Postgres() as postgres:
            before, after, loaded = move(folder, postgres.fresh_database())
        print(f"\n  SQLite -> PostgreSQL: {loaded.strip()}")
        self.assertEqual(after, before)
        self.assertEqual((len(before["items"]), before["sessions"]), (16, 1))


if __name__ == "__main__":
    unittest.main()
