from django.db import models
from django.utils import timezone


class User(models.Model):
    """Someone who logs in by email link: the address is the whole identity, no password."""

    email = models.EmailField(unique=True)
    date_joined = models.DateTimeField(default=timezone.now)
    last_login = models.DateTimeField(null=True, blank=True)

    REQUIRED_FIELDS = []
    USERNAME_FIELD = "email"
    is_anonymous = False
    is_authenticated = True
    is_active = True

    def __str__(self):
        return self.email
