"""The one place accounts code asks the time, so tests can move it without sleeping."""

from django.utils import timezone


def now():
    """The current time (aware, UTC); tests patch this to travel in time."""
    return timezone.now()
