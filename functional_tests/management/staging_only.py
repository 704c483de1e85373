"""The guard that keeps the FT-only commands off every server not marked as staging."""

from django.conf import settings
from django.core.management.base import CommandError

from superlists.identity import STAGING_FLAG as FLAG
from superlists.identity import dotenv_marks_staging, dotenv_path, site_id


def add_site_id_argument(parser):
    # Required, so that no client can change a site without naming the one it means: the FT
    # tools read it from the X-Superlists-Site header of the site the browser drives.
    parser.add_argument(
        "--site-id",
        required=True,
        help="refuse unless this is the site with this id (`manage.py preflight` shows it)",
    )


def require_staging(command, expected_site_id):
    """Refuse, before doing anything, unless this is a staging site (and the expected one)."""
    in_dotenv = dotenv_marks_staging()
    if settings.STAGING and in_dotenv:
        if expected_site_id != site_id():
            raise CommandError(
                f"{command} was asked for the site with id {expected_site_id}, the one the "
                f"browser drives, but this is {settings.SITENAME} (id {site_id()}), another "
                f"site. Nothing was changed."
            )
        return
    # Only the .env marks a server as staging: a flag typed in a shell on production
    # (`SUPERLISTS_STAGING=1 manage.py reset_staging`) must not flush it.
    if settings.STAGING:
        why = (
            f"{FLAG} is set in this process's environment, but this site's .env "
            f"({dotenv_path()}) does not set it, and only the .env marks a server as "
            f"staging"
        )
    elif in_dotenv:
        why = (
            f"this site's .env ({dotenv_path()}) sets {FLAG}, but the settings "
            f"{command} runs with do not: they did not load that .env, or the environment "
            f"overrides it"
        )
    else:
        why = (
            f"this server is not marked as one: set {FLAG}=yes in this server's .env "
            f"({dotenv_path()}) if (and only if) it is staging"
        )
    raise CommandError(f"{command} only runs on a staging server, and {why}. Nothing was changed.")
