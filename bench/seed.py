"""Make the pages the throughput benchmark reads; print their paths and a session cookie."""

import json
import sys
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

django.setup()

from accounts.models import User  # noqa: E402
from accounts.sessions import create_pre_authenticated_session  # noqa: E402
from lists.models import Item, List  # noqa: E402

EMAIL = "bench@example.com"
user = User.objects.create(email=EMAIL)
twenty = List.objects.create()
Item.objects.bulk_create(Item(list=twenty, text=f"item number {n}") for n in range(20))
for n in range(20):
    owned = List.objects.create(owner=user)
    Item.objects.bulk_create(Item(list=owned, text=f"list {n} item {m}") for m in range(3))
print(
    json.dumps(
        {
            "list": twenty.get_absolute_url(),
            "my_lists": f"/lists/users/{EMAIL}/",
            "session": create_pre_authenticated_session(EMAIL),
        }
    )
)
