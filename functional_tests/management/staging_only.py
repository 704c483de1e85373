"""The guard that keeps the FT-only commands off every server not marked as staging."""

from django.conf import settings
from django.core.management.base import CommandError


def require_staging(command):
    """Refuse, before doing anything, unless this server's settings say it is staging."""
    if not settings.STAGING:
        raise CommandError(
            f"{command} only runs on a staging server, and this one is not marked as one: "
            f"set SUPERLISTS_STAGING=yes in this server's .env if (and only if) it is "
            f"staging. Nothing was changed."
        )
