import secrets
from typing import NamedTuple

from django.conf import settings
from django.db import connections, models
from django.urls import reverse

ITEM_MAX_LENGTH = 500


def new_list_id():
    """An unguessable list id: 96 random bits, URL-safe."""
    return secrets.token_urlsafe(12)


def list_paths(list_ids):
    """The paths of many lists, as get_absolute_url gives them, for one reverse() in all."""
    # The ids are URL-safe (see new_list_id), so the path of one is the path of any other
    # with the id swapped in; reverse() per list was a tenth of the My lists page's time.
    marker = "LIST-ID-MARKER"
    pattern = reverse("view_list", args=[marker])
    return [pattern.replace(marker, list_id) for list_id in list_ids]


class MyListsRow(NamedTuple):
    """A line of the My lists page."""

    path: str
    name: str | None  # the list's first item; None once every item is deleted
    owner_email: str


class ListManager(models.Manager):
    # LEFT JOINs, so that a list without an owner or without items still comes back as a row.
    # Plain SQL that SQLite and PostgreSQL both run as is.
    PAGE_SQL = """
        SELECT l.id, l.owner_id, u.email, i.id, i.text, i.done
        FROM {list} l
        LEFT JOIN {user} u ON u.id = l.owner_id
        LEFT JOIN {item} i ON i.list_id = l.id
        WHERE l.id = %s
        ORDER BY i.id
    """

    MY_LISTS_SQL = """
        SELECT l.id, l.owner_id = %s, u.email,
               (SELECT i.text FROM {item} i WHERE i.list_id = l.id ORDER BY i.id LIMIT 1)
        FROM {list} l
        JOIN {user} u ON u.id = l.owner_id
        WHERE l.owner_id = %s
           OR l.id IN (SELECT s.{shared_list} FROM {shared} s WHERE s.{shared_user} = %s)
        ORDER BY l.created_at DESC, l.id
    """

    def _fetch(self, sql, params):
        """Run one of the SQL texts above, its {table} names filled in, and return its rows."""
        shared = self.model.shared_with.through._meta
        sql = sql.format(
            list=self.model._meta.db_table,
            user=self.model.owner.field.related_model._meta.db_table,
            item=Item._meta.db_table,
            shared=shared.db_table,
            shared_list=shared.get_field("list").column,
            shared_user=shared.get_field("user").column,
        )
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def my_lists_rows(self, user):
        """The lists user owns and those shared with them, newest first, as MyListsRow."""
        # One query, in place of two ORM queries with a subquery each, whose building cost
        # the My lists page more than running them.
        rows = self._fetch(self.MY_LISTS_SQL, [user.pk, user.pk, user.pk])
        owned, shared_with_user = [], []
        paths = list_paths([row[0] for row in rows])
        for path, (_, is_owner, owner_email, name) in zip(paths, rows, strict=True):
            # SQLite gives the comparison as 0 or 1, PostgreSQL as a boolean.
            (owned if is_owner else shared_with_user).append(MyListsRow(path, name, owner_email))
        return owned, shared_with_user

    def get_with_item_rows(self, list_id):
        """The list, its owner loaded, and its items as (id, text, done) tuples, in order."""
        # One query for what the list page, the busiest page, needs: building the two ORM
        # queries this replaces cost that page more than rendering it. Raises DoesNotExist.
        owner_model = self.model.owner.field.related_model
        rows = self._fetch(self.PAGE_SQL, [list_id])
        if not rows:
            raise self.model.DoesNotExist(f"No list {list_id!r}")
        found_id, owner_id, owner_email = rows[0][:3]
        # Only the fields read here are loaded: any other is fetched if something asks for it.
        found = self.model.from_db(self.db, ["id", "owner_id"], [found_id, owner_id])
        if owner_id is not None:
            found.owner = owner_model.from_db(self.db, ["id", "email"], [owner_id, owner_email])
        # SQLite gives done as 0 or 1; a list without items has one row of NULLs for them.
        items = [
            (item_id, text, bool(done)) for *_, item_id, text, done in rows if item_id is not None
        ]
        return found, items


class List(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_list_id, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="owned_lists",
    )
    shared_with = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="shared_lists"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ListManager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"List {self.id}"

    def get_absolute_url(self):
        return reverse("view_list", args=[self.id])

    def is_owned_by(self, user):
        """Whether user owns this list (an anonymous list has no owner; a visitor no pk)."""
        return self.owner_id is not None and self.owner_id == user.pk

    def can_be_seen_by(self, user):
        """Anyone sees an anonymous list; an owned one, its owner and who it is shared with."""
        if self.owner_id is None or self.is_owned_by(user):
            return True
        return user.is_authenticated and self.shared_with.filter(pk=user.pk).exists()


class Item(models.Model):
    list = models.ForeignKey(List, on_delete=models.CASCADE)
    text = models.CharField(max_length=ITEM_MAX_LENGTH)
    done = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["list", "text"], name="unique_item_text_per_list")
        ]

    def __str__(self):
        return self.text
