"""Django's migrate, run by one process at a time per PostgreSQL database (an advisory lock)."""

import time

from django.core.management.commands import migrate
from django.db import connections

# Any constant both racers agree on; the lock lives in the database, so app hosts share it.
LOCK_KEY = 0x5355504C  # "SUPL"


class Command(migrate.Command):
    help = migrate.Command.help + " On PostgreSQL, one process at a time (pg_advisory_lock)."

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            # SQLite has one host by definition, and locks the whole file while it writes.
            return super().handle(*args, **options)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            if not cursor.fetchone()[0]:
                started = time.monotonic()
                if options["verbosity"]:
                    self.stdout.write("Another migrate holds this database's lock: waiting.")
                cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
                if options["verbosity"]:
                    self.stdout.write(f"Lock taken after {time.monotonic() - started:.1f} s.")
        try:
            # The winner applied everything; the others find nothing left to apply.
            return super().handle(*args, **options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
