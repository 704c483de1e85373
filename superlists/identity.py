"""Which site this is: the staging mark from the site's own .env, and an id both sides show."""

from pathlib import Path

from django.conf import settings
from django.utils.crypto import salted_hmac

from superlists.env import is_yes, read_dotenv

STAGING_FLAG = "SUPERLISTS_STAGING"
# Sent by staging sites only, on every response Django serves: "<SITENAME> <site id>".
HEADER = "X-Superlists-Site"


def dotenv_path():
    """The site's .env as people know it: on a server the release's .env links to the site's."""
    return Path(settings.DOTENV_FILE).resolve()


def dotenv_marks_staging():
    """Whether this site's own .env file (not the process environment) sets the staging flag."""
    return is_yes(read_dotenv(settings.DOTENV_FILE).get(STAGING_FLAG))


def is_staging():
    """A staging site: its settings say so, and so does its own .env."""
    return bool(settings.STAGING) and dotenv_marks_staging()


def site_id():
    """A short id of this site and its database, the same in gunicorn and in manage.py."""
    # Keyed by the site's own secret key, so two sites never share an id and it gives nothing
    # away; the database is part of it, so a shell pointed at another database shows another.
    database = settings.DATABASES["default"]
    material = "|".join(
        [settings.SITENAME, str(database.get("HOST") or ""), str(database.get("NAME") or "")]
    )
    return salted_hmac("superlists.identity.site_id", material).hexdigest()[:16]


def header_value():
    return f"{settings.SITENAME} {site_id()}"


def parse_header(value):
    """(sitename, site id) from the header's value, or None when it is absent or malformed."""
    parts = (value or "").split()
    return (parts[0], parts[1]) if len(parts) == 2 else None
