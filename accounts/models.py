import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts import clock

# secrets.token_urlsafe(32) carries 256 random bits, twice the 128 a login token needs.
TOKEN_BYTES = 32
# Per client IP the limit is this many times the per-address limit: a household or an office
# shares one address, but one IP asking for links to many inboxes is a spammer.
PER_IP_FACTOR = 4
RATE_WINDOW = timedelta(hours=1)
IP_MAX_LENGTH = 64


def normalize_email(email):
    """One spelling per address, so Edith@Example.com and edith@example.com are one user."""
    return email.strip().lower()


def hash_token(raw_token):
    """The only form of a token the database keeps: a copy of it grants no logins."""
    # Real tokens are ASCII; anything that is not can be mangled, since it will not match.
    return hashlib.sha256(raw_token.encode("utf-8", "replace")).hexdigest()


def max_token_age():
    return timedelta(seconds=settings.LOGIN_TOKEN_MAX_AGE)


class UserManager(models.Manager):
    """What Django's auth machinery (createsuperuser, the admin) asks of a user manager."""

    def get_by_natural_key(self, email):
        return self.get(email=normalize_email(email))

    def create_user(self, email, **fields):
        return self.create(email=normalize_email(email), **fields)

    def create_superuser(self, email, password=None, **fields):
        # There are no passwords: a superuser logs in by emailed link like everyone else.
        return self.create_user(email, is_staff=True, is_superuser=True, **fields)


class User(models.Model):
    """Someone who logs in by email link: the address is the whole identity, no password."""

    email = models.EmailField(unique=True)
    date_joined = models.DateTimeField(default=timezone.now)
    last_login = models.DateTimeField(null=True, blank=True)
    # db_default: the release still running when this column arrives inserts users without it.
    is_staff = models.BooleanField(
        default=False, db_default=False, help_text="May use the admin site."
    )
    is_superuser = models.BooleanField(default=False, db_default=False)

    objects = UserManager()

    REQUIRED_FIELDS = []
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    is_anonymous = False
    is_authenticated = True
    is_active = True

    def __str__(self):
        return self.email

    def natural_key(self):
        return (self.email,)

    def get_username(self):
        return self.email

    # The admin asks these; staff may do whatever the admin's pages offer them.
    def has_perm(self, perm, obj=None):
        return self.is_staff or self.is_superuser

    def has_perms(self, perms, obj=None):
        return all(self.has_perm(perm, obj) for perm in perms)

    def has_module_perms(self, app_label):
        return self.is_staff or self.is_superuser


class InvalidToken(Exception):
    """A login token that logs nobody in; the message says why, for the debug log."""


class LoginTokenQuerySet(models.QuerySet):
    def issue(self, email):
        """Create a token for an address; return the row and the raw token (never stored)."""
        now = clock.now()
        # Expired tokens can never log anyone in again, so they are dropped as new ones come.
        self.filter(created_at__lte=now - max_token_age()).delete()
        raw_token = secrets.token_urlsafe(TOKEN_BYTES)
        row = self.create(
            token_hash=hash_token(raw_token), email=normalize_email(email), created_at=now
        )
        return row, raw_token

    def _unexpired(self, raw_token, now):
        """The row of a known, unexpired token, or raise InvalidToken saying why."""
        if not raw_token:
            raise InvalidToken("no token given")
        row = self.filter(token_hash=hash_token(raw_token)).first()
        if row is None:
            raise InvalidToken("unknown token")
        if row.created_at <= now - max_token_age():
            raise InvalidToken(f"token issued at {row.created_at.isoformat()} has expired")
        return row

    def email_if_usable(self, raw_token):
        """The address a token would log in, without using it up; None if it would not."""
        try:
            row = self._unexpired(raw_token, clock.now())
        except InvalidToken:
            return None
        return row.email if row.used_at is None else None

    def consume(self, raw_token):
        """Use a token up and return its email address, or raise InvalidToken saying why."""
        now = clock.now()
        row = self._unexpired(raw_token, now)
        # A conditional UPDATE, not read-then-save: when two workers race for the same link
        # the database lets exactly one of them set used_at, so a link never logs in twice.
        if not self.filter(pk=row.pk, used_at__isnull=True).update(used_at=now):
            raise InvalidToken("token already used")
        return row.email


class LoginToken(models.Model):
    """A single-use login link, kept only as a hash."""

    token_hash = models.CharField(max_length=64, unique=True)
    email = models.EmailField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    objects = LoginTokenQuerySet.as_manager()

    def __str__(self):
        return f"Login token for {self.email} from {self.created_at:%Y-%m-%d %H:%M}"


class LoginEmailEventQuerySet(models.QuerySet):
    def record_if_allowed(self, email, ip):
        """Record a login email about to go out, or return None when a limit is reached."""
        now = clock.now()
        window_start = now - RATE_WINDOW
        self.filter(created_at__lte=window_start).delete()
        event = self.create(email=normalize_email(email), ip=ip[:IP_MAX_LENGTH], created_at=now)
        # Counting after inserting (our own row included) means two workers racing for the
        # last slot both see it taken: the limit may refuse one too many, never send one too
        # many. A refused attempt takes its row back so hammering does not extend the block.
        recent = self.filter(created_at__gt=window_start)
        per_address = settings.LOGIN_EMAILS_PER_HOUR
        if (
            recent.filter(email=event.email).count() > per_address
            or recent.filter(ip=event.ip).count() > per_address * PER_IP_FACTOR
        ):
            event.delete()
            return None
        return event


class LoginEmailEvent(models.Model):
    """A login email sent (or being sent): what the hourly rate limits count."""

    email = models.EmailField()
    ip = models.CharField(max_length=IP_MAX_LENGTH)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = LoginEmailEventQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["email", "created_at"], name="login_email_by_address"),
            models.Index(fields=["ip", "created_at"], name="login_email_by_ip"),
        ]

    def __str__(self):
        return f"Login email to {self.email} from {self.ip} at {self.created_at:%H:%M:%S}"
