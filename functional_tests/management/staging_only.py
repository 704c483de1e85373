"""The guard that keeps the FT-only commands off every server not marked as staging."""

from django.conf import settings
from django.core.management.base import CommandError

from superlists.env import is_yes, read_dotenv

FLAG = "SUPERLISTS_STAGING"


def dotenv_marks_staging():
    """Whether this site's own .env file (not the process environment) sets the staging flag."""
    return is_yes(read_dotenv(settings.DOTENV_FILE).get(FLAG))


def require_staging(command):
    """Refuse, before doing anything, unless this site's .env and its settings say staging."""
    in_dotenv = dotenv_marks_staging()
    if settings.STAGING and in_dotenv:
        return
    # Only the .env marks a server as staging: a flag typed in a shell on production
    # (`SUPERLISTS_STAGING=1 manage.py reset_staging`) must not flush it.
    if settings.STAGING:
        why = (
            f"{FLAG} is set in this process's environment, but this site's .env "
            f"({settings.DOTENV_FILE}) does not set it, and only the .env marks a server as "
            f"staging"
        )
    elif in_dotenv:
        why = (
            f"this site's .env ({settings.DOTENV_FILE}) sets {FLAG}, but the settings "
            f"{command} runs with do not: they did not load that .env, or the environment "
            f"overrides it"
        )
    else:
        why = (
            f"this server is not marked as one: set {FLAG}=yes in this server's .env "
            f"({settings.DOTENV_FILE}) if (and only if) it is staging"
        )
    raise CommandError(f"{command} only runs on a staging server, and {why}. Nothing was changed.")
