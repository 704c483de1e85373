"""Sessions made the way Django makes them, for tests and tools that skip the login email."""

from importlib import import_module

from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest

from accounts.authentication import BACKEND_PATH
from accounts.models import User, normalize_email


def create_pre_authenticated_session(email):
    """Log an address in on a new saved session, as auth.login does, and return its key."""
    user, _ = User.objects.get_or_create(email=normalize_email(email))
    # The same steps as django.test.Client.force_login: a bare request with a fresh store,
    # then auth.login itself, so the session holds exactly what a real login would put there.
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore()
    auth.login(request, user, backend=BACKEND_PATH)
    request.session.save()
    return request.session.session_key
