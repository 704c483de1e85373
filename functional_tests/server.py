"""The server the functional tests talk to: the one place that decides local or staging.

By default the tests drive Django's live server in this process. With
STAGING_SERVER=host[:port] (or a full http(s):// URL) they drive a deployed site instead,
configured by these variables:

    STAGING_SITENAME        the site's folder under ~/sites/ (default: the site that answers
                            STAGING_SERVER, as it says in its X-Superlists-Site header)
    STAGING_SSH_HOST        where to SSH to, [user@]host[:port] (default: STAGING_SERVER's host);
                            behind a balancer, every app host, comma-separated: the commands
                            run on the first, each one's logs are read
    STAGING_SSH_USER        SSH user; STAGING_SSH_PORT, STAGING_SSH_KEY (a private key file) and
    SUPERLISTS_KNOWN_HOSTS  (the known_hosts file checked) are read by deploy_tools.connect
    STAGING_EMAIL_DOMAIN    a domain whose every address lands in the POP3 mailbox (staging.test)
    POP3_HOST               default: the host of STAGING_SERVER
    POP3_SSL                yes for POP3 over TLS (default no)
    POP3_CAFILE             a CA or self-signed certificate to trust for POP3_SSL
    POP3_PORT               default 995 with POP3_SSL, else 110
    POP3_USER, POP3_PASSWORD  the mailbox account (required to read login emails)

Both servers offer the same operations, so test code never asks which one it has. Before it
changes anything, a StagingServer proves that the site its management commands run on is the
site the browser drives, and runs the server's preflight (see superlists/preflight.py).
"""

import atexit
import email
import email.policy
import functools
import json
import logging
import os
import poplib
import secrets
import shlex
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import getaddresses
from functools import cached_property
from urllib.parse import urlsplit

from django.core import mail
from django.test import override_settings

from deploy_tools import serverlogs
from functional_tests.ormguard import server_side
from functional_tests.waits import wait_for
from superlists.env import Variables, is_yes, parse_dotenv
from superlists.identity import HEADER as SITE_HEADER
from superlists.identity import STAGING_FLAG, parse_header
from superlists.logs import RequestContextFilter

EMAIL_TIMEOUT = 10
WHERE_TO_SET = "in the environment you run the functional tests from"
LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s ip=%(client_ip)s "
    "%(method)s %(path)s user=%(user)s] %(message)s"
)


class StagingError(Exception):
    """Something on the staging server did not work; the message says what and where."""


@dataclass(frozen=True)
class Email:
    """A message as a test reads it."""

    to: tuple
    subject: str
    body: str


def get_server(test_case):
    """The server this run targets: staging when STAGING_SERVER is set, else the live server."""
    target = Variables(where=WHERE_TO_SET).str("STAGING_SERVER")
    if target:
        return StagingServer.for_target(target)
    return LocalServer(test_case)


def _not_found(to, subject, seen):
    return LookupError(f"no email to {to} with subject {subject!r} yet ({seen})")


class _LogCapture(logging.Handler):
    """Keep the site's recent log records, stamped with their request, in memory."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.addFilter(RequestContextFilter())
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self.records = deque(maxlen=5000)
        self._lock_records = threading.Lock()

    def emit(self, record):
        # Format now, in the request's own thread, while its context is still set.
        line = self.format(record)
        with self._lock_records:
            self.records.append((record.created, line))

    def since(self, started):
        with self._lock_records:
            return [line for created, line in self.records if created >= started]


class LocalServer:
    """Django's live server in this process: its test database, mail outbox and loggers."""

    def __init__(self, test_case):
        self.url = test_case.live_server_url
        # Login links are built from SITE_URL: point them at this live server.
        site_url = override_settings(SITE_URL=self.url)
        site_url.enable()
        test_case.addCleanup(site_url.disable)
        self._logs = _LogCapture()
        logging.getLogger().addHandler(self._logs)
        test_case.addCleanup(logging.getLogger().removeHandler, self._logs)

    def email_for(self, name):
        """The address a cast member uses in this run."""
        return f"{name}@example.com"

    def reset(self):
        """Nothing to do: the test case empties its database after every test."""

    def create_session(self, email_address):
        """The key of a logged-in session for email_address."""
        from accounts.sessions import create_pre_authenticated_session

        with server_side():
            return create_pre_authenticated_session(email_address)

    def wait_for_email(self, to, subject, timeout=EMAIL_TIMEOUT):
        """The email sent to `to` with `subject`, taken out of the outbox as POP3's DELE would."""

        def take():
            for message in list(mail.outbox):
                if to in message.to and message.subject == subject:
                    mail.outbox.remove(message)
                    return Email(tuple(message.to), message.subject, message.body)
            raise _not_found(to, subject, f"{len(mail.outbox)} in the outbox")

        return wait_for(take, f"the email to {to} with subject {subject!r}", timeout)

    def log_mark(self):
        """Nothing to mark: each record carries its exact time."""

    def log_records(self, since, mark=None):
        """The site's log records from `since` (a time.time() value) on."""
        return serverlogs.local_window(self._logs.since(since))


class StagingServer:
    """A deployed site: commands over one reused SSH connection, its mail over POP3."""

    _instances = {}

    @classmethod
    def for_target(cls, target):
        """One instance per target for the whole run, so its SSH connection is reused."""
        if target not in cls._instances:
            cls._instances[target] = cls(target, os.environ)
            atexit.register(cls._instances[target].close)
        return cls._instances[target]

    def __init__(self, target, environ):
        self.url = (target if "://" in target else f"http://{target}").rstrip("/")
        self.host = urlsplit(self.url).hostname
        variables = Variables(environ, where=WHERE_TO_SET)
        self._named_site = variables.str("STAGING_SITENAME")
        # Until the preflight: then the site that answers the URL, unless one is named.
        self.sitename = self._named_site or self.host
        self.ssh_targets = [
            target.strip()
            for target in variables.str("STAGING_SSH_HOST", self.host).split(",")
            if target.strip()
        ] or [self.host]
        self.ssh_target = self.ssh_targets[0]
        self._other_hosts = []  # connections to the other app hosts, for their logs
        self.email_domain = variables.str("STAGING_EMAIL_DOMAIN", "staging.test")
        self.pop3 = _Pop3Mailbox.from_environment(environ, default_host=self.host)
        self._lock = threading.Lock()
        self._unreachable = None
        self._environ = environ
        self._site_id = None
        self._refused = None
        self.preflight_seconds = None

    def email_for(self, name):
        """A fresh address for each test, so no leftover email from another run can match."""
        return f"{name}+{secrets.token_hex(4)}@{self.email_domain}"

    def reset(self):
        """Empty the staging database (the server refuses unless its .env marks it staging)."""
        if self._site_id is None:
            self.site_id  # noqa: B018 (the preflight empties it, in the same process)
            return
        self._manage("reset_staging", "--site-id", self._site_id)

    def create_session(self, email_address):
        """The key of a logged-in session for email_address, made on the server."""
        return self._manage("create_session", email_address, "--site-id", self.site_id).strip()

    @property
    def site_id(self):
        """The id of the site the browser drives, proven before the first change; else refuse."""
        if self._refused:
            raise StagingError(self._refused)
        if self._site_id is None:
            try:
                self._site_id = self._preflight()
            except StagingError as error:
                # Every later test would fail the same way: one full screen is enough.
                first = str(error).splitlines()[0]
                self._refused = f"{first} (the staging preflight failed; not tried again this run)"
                raise
        return self._site_id

    def wait_for_email(self, to, subject, timeout=EMAIL_TIMEOUT):
        """The email sent to `to` with `subject`, read from the POP3 mailbox and deleted there."""
        return wait_for(
            lambda: self.pop3.take(to, subject),
            f"the email to {to} with subject {subject!r} in {self.pop3}",
            timeout,
        )

    def log_mark(self):
        """Where each of the site's log files ends now, so a test reads only its own lines."""
        return {
            label: serverlogs.parse_mark(run(serverlogs.mark_command(logs)))
            for label, run, logs, _ in self._log_hosts
        }

    def log_records(self, since, mark=None):
        """The site's log records (app, gunicorn, nginx) written since `mark`, over SSH.

        With several app hosts, each one's: a request the balancer sent to the second is
        logged there only. Each record then names its host.
        """
        found = []
        for label, run, logs, tz in self._log_hosts:
            output = run(serverlogs.read_command(logs, (mark or {}).get(label, {})))
            for record in serverlogs.window(output, serverlogs.since_utc(since), tz):
                record.host = label if len(self._log_hosts) > 1 else ""
                found.append(record)
        earliest = datetime.min.replace(tzinfo=UTC)
        return sorted(found, key=lambda record: record.stamp or earliest)

    @cached_property
    def _log_hosts(self):
        """(name, run, logs folder, time zone) of each app host whose logs the tests read."""
        from deploy_tools.connect import connection, open_connection
        from deploy_tools.sitepaths import SitePaths

        hosts = [(self.ssh_target, self._run, self.paths.logs, self._local_tz)]
        for target in self.ssh_targets[1:]:
            conn = open_connection(connection(target, self._environ))
            self._other_hosts.append(conn)

            run = functools.partial(self._run, on=(conn, target))
            paths = SitePaths.for_connection(conn, self.sitename)
            hosts.append((target, run, paths.logs, serverlogs.offset_zone(run("date +%z").strip())))
        return hosts

    def close(self):
        if "connection" in self.__dict__:
            self.connection.close()
        for conn in self._other_hosts:
            conn.close()

    @cached_property
    def connection(self):
        from deploy_tools.connect import ConnectError, connection, open_connection

        # A host that can't be reached fails every test the same way: try it once per run,
        # so a run against a dead host ends in seconds, not a timeout per test.
        if self._unreachable:
            raise StagingError(self._unreachable)
        try:
            return open_connection(connection(self.ssh_target, self._environ))
        except ConnectError as error:
            self._unreachable = f"{error} (STAGING_SERVER={self.url}; not tried again this run)"
            raise

    @cached_property
    def paths(self):
        from deploy_tools.sitepaths import SitePaths

        return SitePaths.for_connection(self.connection, self.sitename)

    @cached_property
    def _local_tz(self):
        # nginx's error log is in the server's local time: learn its offset once.
        return serverlogs.offset_zone(self._run("date +%z").strip())

    def _preflight(self):
        """Prove which site the browser drives, check it and empty it: one manage.py run."""
        # Connect first: a host that cannot be reached says so in SSH's words, once per run.
        self.connection  # noqa: B018
        started = time.perf_counter()
        status, headers, _ = _ask(self.url + "/")
        asking = time.perf_counter() - started
        claimed = parse_header(headers.get(SITE_HEADER))
        if claimed and not self._named_site:
            self.sitename = claimed[0]
        if claimed and _app_host(headers):
            _one_site_on_every_app_host(self.url, headers, claimed)
        said = None
        if claimed and claimed[0] == self.sitename:
            # The server refuses unless it is staging, has the id the URL showed, and its
            # preflight finds nothing; the first reset costs no extra round trip this way.
            try:
                report = json.loads(
                    self._manage("reset_staging", "--site-id", claimed[1], "--preflight", self.host)
                )
            except StagingError as error:
                said = str(error)  # the read-only preflight below says why
            else:
                started = time.perf_counter()
                problems = self._static_problems(report)
                asking += time.perf_counter() - started
                if problems:
                    raise self._problems(problems)
                self.preflight_seconds = asking + report["seconds"]
                sys.stderr.write(
                    f"Staging preflight of {self.url}: site {self.sitename} (id {claimed[1]}), "
                    f"{report['workers']} workers, ok; it cost {self.preflight_seconds:.2f} s "
                    f"(checks on the server {report['seconds']:.2f} s, in the first reset's "
                    f"process; 2 HTTP requests {asking:.2f} s)\n"
                )
                return claimed[1]
        report = json.loads(self._manage("preflight", "--json", "--host", self.host))
        refusal = self._not_proven(status, claimed, report)
        problems = report["problems"] + self._static_problems(report)
        if refusal and claimed is None and report["staging"] and problems:
            # The staging site could not answer for itself (a 502 with gunicorn down, say):
            # its own problems are the cause to show first.
            raise self._problems(
                problems, f"{self.url} answered HTTP {status} without {SITE_HEADER}"
            )
        if refusal:
            raise StagingError(
                f"{refusal} Refusing to run the functional tests; nothing was changed."
            )
        if problems:
            raise self._problems(problems)
        raise StagingError(f"The first reset of site {self.sitename} was refused: {said}")

    def _problems(self, problems, seen=""):
        return StagingError(
            f"The staging preflight of {self.url} (site {self.sitename}) found "
            f"{len(problems)} problem(s); no test ran{f' ({seen})' if seen else ''}:\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )

    def _not_proven(self, status, claimed, report):
        """Why the browser's site and the commands' site are not proven the same staging site."""
        site = f"site {self.sitename} on {self.ssh_target}"
        # Never call a site "not staging" before reading its own .env: manage.py may not
        # have found it (a release without its .env link, say).
        staging_dotenv = report["dotenv_staging"] or (
            not report["staging"] and is_yes(self._site_dotenv().get(STAGING_FLAG))
        )
        if staging_dotenv and not report["settings_staging"]:
            loaded = [
                p
                for p in report["problems"]
                if "did not load" in p or "overrides" in p or "there is no .env" in p
            ]
            return (
                f"manage.py on {site} does not run with the site's settings: "
                f"{' '.join(loaded) or 'SUPERLISTS_STAGING is overridden in its environment.'} "
                f"The site's .env ({self.paths.env}) marks it as staging, but the FT commands "
                f"would run with other settings (another database, DEBUG on)."
            )
        if not report["staging"]:
            return f"{site} is not a staging site: {_why_not_staging(report)}."
        if claimed is None:
            return (
                f"{self.url} answered HTTP {status} without the {SITE_HEADER} header every "
                f"staging site sends, so it is not a staging site (or runs code older than "
                f"this check), and nothing proves it is {site}, where the management commands "
                f"would run. Point STAGING_SERVER at that staging site's own address."
            )
        if claimed[1] != report["site_id"]:
            return (
                f"{self.url} is served by site {claimed[0]} (id {claimed[1]}), but the "
                f"management commands would run on {site} (id {report['site_id']}): the "
                f"browser and the FT tools would change different sites. Leave "
                f"STAGING_SITENAME unset, or set it to the site that answers {self.url}."
            )
        return None

    def _static_problems(self, report):
        if report["static_size"] is None:
            return []  # the server already said the file was never collected
        url = self.url + report["static_path"]
        status, _, size = _ask(url)
        if status == 200 and size == report["static_size"]:
            return []
        return [
            f"{url} answered HTTP {status} ({size} bytes) but the server collected "
            f"{report['static_size']} bytes into its STATIC_ROOT: nginx does not serve the "
            f"collected static files (check the site's `location /static/` alias)."
        ]

    def _manage(self, *args):
        # The server's own settings load its .env: nothing is re-exported from this side.
        try:
            return self._run(self.paths.manage(*args), what=f"manage.py {args[0]}")
        except StagingError as error:
            if "Unknown command" in str(error):
                raise StagingError(self._unknown_command(args[0], error)) from error
            raise

    def _site_dotenv(self):
        """The site's own .env, read over SSH (not through its settings)."""
        env = shlex.quote(str(self.paths.env))
        return parse_dotenv(self._run(f"cat {env} 2>/dev/null || true"))

    def _unknown_command(self, command, error):
        """What an "Unknown command" means, judged by the site's .env as read over SSH."""
        env = self.paths.env
        dotenv = self._site_dotenv()
        said = str(error).splitlines()[-1]
        if command == "preflight":
            return (
                f"{said}. The live release on site {self.sitename} has no preflight command: "
                f"deploy this commit there (fab deploy) before running the FTs against it."
            )
        if is_yes(dotenv.get(STAGING_FLAG)):
            # Never "not a staging server" when its .env says it is: the settings did not load.
            return (
                f"{said}. Yet the site's .env ({env}) sets {STAGING_FLAG}: manage.py on "
                f"{self.ssh_target} ran without that .env loaded, so its settings are not the "
                f"site's. Nothing was changed."
            )
        return (
            f"{self.url} (site {self.sitename}) is not a staging server: its .env ({env}) does "
            f"not set {STAGING_FLAG}, so it has no {command} command ({said}). Refusing to run "
            f"the functional tests there; nothing was changed."
        )

    def _run(self, command, what=None, on=None):
        """Run command on the SSH host (or on=(connection, name), another app host's)."""
        conn, target = on or (self.connection, self.ssh_target)
        with self._lock:
            result = conn.run(command, hide=True, warn=True, in_stream=False)
        if result.failed:
            raise StagingError(
                f"{what or command} failed on {target} (site {self.sitename}, "
                f"exit {result.exited}): {(result.stderr or result.stdout).strip()}"
            )
        return result.stdout


def _why_not_staging(report):
    if report["settings_staging"]:
        return (
            f"{STAGING_FLAG} is set only in the SSH session's environment, not in its .env "
            f"({report['dotenv']}), and only the .env marks a site as staging"
        )
    return f"its .env ({report['dotenv']}) does not set {STAGING_FLAG}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _app_host(headers):
    """The app host that answered, when the site runs on several (X-Served-By: HOST pid N)."""
    host, _, pid = (headers.get("X-Served-By") or "").rpartition(" pid ")
    return host if pid else ""


def _one_site_on_every_app_host(url, headers, claimed, asks=6):
    """Behind a balancer, every app host must answer as the same site: same key, same database."""
    seen = {_app_host(headers): claimed}
    for _ in range(asks):
        _, more, _ = _ask(url + "/")
        if parse_header(more.get(SITE_HEADER)):
            seen.setdefault(_app_host(more), parse_header(more.get(SITE_HEADER)))
    if len(set(seen.values())) > 1:
        answers = "; ".join(
            f"{host} answers as {s[0]} id {s[1]}" for host, s in sorted(seen.items())
        )
        raise StagingError(
            f"The app hosts behind {url} are not one site: {answers}. The id is keyed by "
            f"DJANGO_SECRET_KEY and the database, so one app host runs with another secret key "
            f"(sessions and login links made on one are refused by the other) or another "
            f"DATABASE_URL (lists saved through one are missing on the other). fab -H <every app "
            f"host> status names which; fab -H <every app host> deploy gives them all the first "
            f"one's key. Refusing to run the functional tests; nothing was changed."
        )


def _ask(url):
    """(status, headers, body length) of a GET of url, redirects not followed."""
    try:
        with _opener.open(url, timeout=10) as response:
            return response.status, response.headers, len(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, len(error.read())
    except (OSError, ValueError) as error:
        raise StagingError(f"Could not GET {url}: {error}") from error


class _Pop3Mailbox:
    """A POP3 mailbox read with a fresh login per look, since POP3 freezes its view at login."""

    def __init__(self, host, port, user, password, use_ssl, cafile):
        self.host, self.port, self.user = host, port, user
        self._password, self._ssl, self._cafile = password, use_ssl, cafile

    @classmethod
    def from_environment(cls, environ, default_host):
        variables = Variables(environ, where=WHERE_TO_SET)
        use_ssl = variables.bool("POP3_SSL")
        return cls(
            host=variables.str("POP3_HOST", default_host),
            port=variables.int("POP3_PORT", 995 if use_ssl else 110, minimum=1, what="a port"),
            user=variables.str("POP3_USER"),
            password=environ.get("POP3_PASSWORD", ""),  # as typed: spaces may be part of it
            use_ssl=use_ssl,
            cafile=variables.str("POP3_CAFILE") or None,
        )

    def __str__(self):
        scheme = "pop3s" if self._ssl else "pop3"
        return f"{scheme}://{self.user or '(POP3_USER unset)'}@{self.host}:{self.port}"

    def take(self, to, subject):
        """The newest message to `to` with `subject`, deleted; LookupError if none yet."""
        box = self._log_in()
        try:
            count, _ = box.stat()
            for number in range(count, 0, -1):
                _, header_lines, _ = box.top(number, 0)
                headers = _parse(header_lines)
                if headers["subject"] != subject or not _addressed_to(headers, to):
                    continue
                _, lines, _ = box.retr(number)
                message = _parse(lines)
                box.dele(number)
                return Email(
                    (to,), str(message["subject"]), message.get_body(("plain",)).get_content()
                )
            raise _not_found(to, subject, f"{count} other message(s) in the mailbox")
        finally:
            # DELE only takes effect at a clean QUIT.
            box.quit()

    def _log_in(self):
        if not (self.user and self._password):
            raise StagingError("Set POP3_USER and POP3_PASSWORD to read login emails on staging.")
        try:
            if self._ssl:
                context = ssl.create_default_context(cafile=self._cafile)
                box = poplib.POP3_SSL(self.host, self.port, timeout=10, context=context)
            else:
                box = poplib.POP3(self.host, self.port, timeout=10)
            box.user(self.user)
            box.pass_(self._password)
        except (OSError, poplib.error_proto) as error:
            raise StagingError(f"Could not log in to {self}: {error}") from error
        return box


def _parse(lines):
    return email.message_from_bytes(b"\r\n".join(lines), policy=email.policy.default)


def _addressed_to(headers, to):
    fields = ("to", "cc", "delivered-to", "x-original-to")
    values = [str(value) for field in fields for value in headers.get_all(field) or ()]
    return to.lower() in {address.lower() for _, address in getaddresses(values)}
