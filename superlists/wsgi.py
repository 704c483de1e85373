"""WSGI entry point for gunicorn: `gunicorn superlists.wsgi:application`."""

import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application
from gunicorn.errors import AppImportError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "superlists.settings")

try:
    application = get_wsgi_application()
except ImproperlyConfigured as error:
    # gunicorn prints an AppImportError as its bare message and stops, where anything else
    # is 50 lines of traceback per worker before the sentence that says what to set.
    raise AppImportError(f"Superlists is not configured: {error}") from None
