import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse

ITEM_MAX_LENGTH = 500


def new_list_id():
    """An unguessable list id: 96 random bits, URL-safe."""
    return secrets.token_urlsafe(12)


class ListQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Lists a visitor may see: anonymous ones, and owned ones they own or share."""
        anonymous = models.Q(owner__isnull=True)
        if not user.is_authenticated:
            return self.filter(anonymous)
        return self.filter(anonymous | models.Q(owner=user) | models.Q(shared_with=user)).distinct()


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

    objects = ListQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"List {self.id}"

    def get_absolute_url(self):
        return reverse("view_list", args=[self.id])

    def can_be_seen_by(self, user):
        if self.owner_id is None:
            return True
        if not user.is_authenticated:
            return False
        return self.owner_id == user.pk or self.shared_with.filter(pk=user.pk).exists()


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
