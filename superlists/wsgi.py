"""WSGI entry point for gunicorn: `gunicorn superlists.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "superlists.settings")

application = get_wsgi_application()
