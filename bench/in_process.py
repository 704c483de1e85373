"""What each performance trick buys, timed in this process (no HTTP, no other load counted).

    .venv/bin/python bench/in_process.py [--rounds 15]

Each figure is the fastest of the rounds (the least disturbed by other processes on a shared
machine) of the mean over 200 requests through Django's test client, on an in-memory test
database with development settings, and its ratio to the first, a bare view, measured in the
same run.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from accounts.models import User  # noqa: E402
from lists.models import Item, List  # noqa: E402
from lists.rows import item_rows  # noqa: E402

PER_ROUND = 200


def fastest(rounds, call):
    """The fastest round's mean time per call, in milliseconds."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(PER_ROUND):
            call()
        best = min(best, (time.perf_counter() - started) / PER_ROUND)
    return best * 1000


def seed():
    user = User.objects.create(email="bench@example.com")
    twenty = List.objects.create()
    Item.objects.bulk_create(Item(list=twenty, text=f"item number {n}") for n in range(20))
    for n in range(20):
        owned = List.objects.create(owner=user)
        Item.objects.bulk_create(Item(list=owned, text=f"list {n} item {m}") for m in range(3))
    return user, twenty


def orm_list_page_data(list_id):
    """What get_with_item_rows replaces: the list with its owner, then its items, by the ORM."""
    found = List.objects.select_related("owner").get(id=list_id)
    return found, list(found.item_set.values_list("id", "text", "done"))


def first_visit(client):
    """The home page for a visitor with no cookies (the last visit's CSRF cookie forgotten)."""
    client.cookies.clear()
    return client.get("/")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    setup_test_environment()
    connection.creation.create_test_db(verbosity=0)
    user, twenty = seed()
    visitor, first_timer, owner = Client(), Client(), Client()
    visitor.get("/")  # now has a CSRF cookie: no longer a first visit
    owner.force_login(user)
    path, items = twenty.get_absolute_url(), List.objects.get_with_item_rows(twenty.id)[1]
    figures = [
        ("bare view (the ceiling)", lambda: visitor.get("/bench/ceiling")),
        ("home page, first visit (cached)", lambda: first_visit(first_timer)),
        ("home page, rendered (has a cookie)", lambda: visitor.get("/")),
        ("list of 20 items", lambda: visitor.get(path)),
        ("  its data in one SQL query", lambda: List.objects.get_with_item_rows(twenty.id)),
        ("  the same through two ORM queries", lambda: orm_list_page_data(twenty.id)),
        ("  its 20 rows (lists/rows.py)", lambda: item_rows(items, path)),
        ("My lists, 20 lists (logged in)", lambda: owner.get(f"/lists/users/{user.email}/")),
    ]
    ceiling = None
    for name, call in figures:
        milliseconds = fastest(rounds, call)
        ceiling = ceiling or milliseconds
        print(
            f"{name:<38} {milliseconds:7.3f} ms  {milliseconds / ceiling:6.2f} x ceiling",
            flush=True,
        )
    print(f"(fastest of {rounds} rounds of {PER_ROUND} calls, in process, development settings;")
    print(f" load average {os.getloadavg()[0]:.2f} at the end)")


if __name__ == "__main__":
    main()
