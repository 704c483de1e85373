"""Where a Superlists site lives on a server: the one place that derives those paths."""

import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

# A site name becomes a folder, an nginx server_name and part of a supervisor program name,
# so it is kept to characters that are safe in all three.
_SITENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

# Host-wide files of the no-systemd fallback, shared by every site on the host: root's
# supervisord (which also runs nginx) listens here, and the deploy user may talk to it.
HOST_RUN_DIR = PurePosixPath("/run/superlists")
SUPERVISOR_SOCKET = HOST_RUN_DIR / "supervisor.sock"
NGINX_PROGRAM = "nginx"
NGINX_ERROR_LOG = HOST_RUN_DIR / "nginx" / "error.log"  # readable by every deploy user
NGINX_PID = HOST_RUN_DIR / "nginx" / "nginx.pid"
# Root's nginx and supervisord include site files only from here: one folder per deploy user,
# made by root (staging_host.py up, or by hand), where fab links that user's sites. A local
# user without a folder cannot feed them configuration.
HOST_SITES_DIR = PurePosixPath("/etc/superlists/sites")
NGINX_USER = "www-data"


def host_include(user, sitename, kind):
    """The link, in the user's root-made folder, that root's nginx or supervisord includes."""
    return HOST_SITES_DIR / user / f"{check_sitename(sitename)}.{kind}.conf"


def check_sitename(sitename):
    """Return sitename if it is usable as a folder and server name, else raise ValueError."""
    if not isinstance(sitename, str) or not _SITENAME.fullmatch(sitename) or ".." in sitename:
        raise ValueError(
            f"{sitename!r} is not a usable site name: use letters, digits, dots, dashes and "
            f"underscores, starting with a letter or digit (for example superlists.example.com)."
        )
    return sitename


@dataclass(frozen=True)
class SitePaths:
    """The folders and files of one site under a deploy user's home directory."""

    sitename: str
    home: str

    def __post_init__(self):
        check_sitename(self.sitename)
        if not str(self.home).startswith("/"):
            raise ValueError(f"The home directory {self.home!r} must be an absolute path.")

    @classmethod
    def for_connection(cls, connection, sitename):
        """Build the paths for sitename on the host behind a Fabric connection."""
        home = connection.run("echo $HOME", hide=True, in_stream=False).stdout.strip()
        return cls(sitename, home)

    @property
    def sites(self):
        return PurePosixPath(self.home) / "sites"

    @property
    def root(self):
        return self.sites / self.sitename

    @property
    def releases(self):
        return self.root / "releases"

    @property
    def source(self):
        # A symlink to the live release, switched atomically by each deploy.
        return self.root / "source"

    def release(self, name):
        """The folder of one release: its code, .venv link, .env and collected static files."""
        return self.releases / name

    @property
    def venvs(self):
        # One virtualenv per requirements.txt, shared by the releases that have the same one.
        return self.root / "venvs"

    @property
    def venv(self):
        return self.source / ".venv"

    @property
    def python(self):
        return self.venv / "bin" / "python"

    @property
    def env(self):
        # A link to the live release's own .env, so a release that never goes live changes
        # nothing the site reads.
        return self.root / ".env"

    @property
    def static(self):
        return self.source / "static"

    @property
    def deploy_log(self):
        """One line per deploy, rollback and failed deploy: when, what, from where."""
        return self.root / "deploys.log"

    @property
    def site_settings(self):
        """How nginx serves the site (scheme, address, port), for rollback and status."""
        return self.root / "site.env"

    @property
    def database(self):
        return self.root / "db.sqlite3"

    @property
    def logs(self):
        return self.root / "logs"

    @property
    def socket(self):
        return self.root / "gunicorn.sock"

    @property
    def nginx_conf(self):
        return self.root / "nginx.conf"

    @property
    def supervisor_conf(self):
        return self.root / "supervisor.conf"

    @property
    def systemd_unit(self):
        return self.root / f"{self.service}.service"

    @property
    def service(self):
        """Name of the gunicorn service (systemd unit or supervisor program) for this site."""
        return "gunicorn-" + re.sub(r"[^A-Za-z0-9_-]", "_", self.sitename)

    def manage(self, *args, release=None):
        """Shell command that runs manage.py with args in the live (or a named) release."""
        folder = self.release(release) if release else self.source
        words = " ".join(shlex.quote(str(arg)) for arg in args)
        python = shlex.quote(str(folder / ".venv" / "bin" / "python"))
        return f"cd {shlex.quote(str(folder))} && {python} manage.py {words}"
