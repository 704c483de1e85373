#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "superlists.settings")
    try:
        from django.core.exceptions import ImproperlyConfigured
        from django.core.management import execute_from_command_line
    except ImportError:
        sys.exit(
            f"Django is not installed for {sys.executable}: activate the project's virtualenv "
            f"first (. .venv/bin/activate; `make run` or `make test` creates it)."
        )

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # A configuration mistake deserves a sentence, not a traceback.
        sys.exit(f"Superlists is not configured: {error}")


if __name__ == "__main__":
    main()
