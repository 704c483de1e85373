"""Provision and deploy Superlists with Fabric 3: `fab -H user@host deploy` from the repo root."""

import contextlib
import dataclasses
import functools
import getpass
import hashlib
import inspect
import json
import os
import re
import secrets
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

# fab imports this file as a top-level module, so make the repository importable for
# the deploy_tools package it shares with the functional tests.
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fabric import Connection, task  # noqa: E402
from invoke.exceptions import Exit, UnexpectedExit  # noqa: E402

from deploy_tools import balancer, connect, database, releases, remote, serverlogs  # noqa: E402
from deploy_tools.errors import DeployError, HealthCheckFailed  # noqa: E402
from deploy_tools.remote import q  # noqa: E402
from deploy_tools.services import MANAGERS  # noqa: E402
from deploy_tools.sitepaths import SitePaths  # noqa: E402
from superlists.env import format_dotenv, parse_dotenv  # noqa: E402

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
KEEP_RELEASES = 3
# Marks a release whose every build step and check passed: only such a release goes live.
BUILT = ".built"
# What `check --deploy` may say about a plain-HTTP site: the settings that only make sense
# behind TLS (HSTS, SSL redirect, secure cookies). Behind TLS it must say nothing.
HTTPS_ONLY_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}
# The last line of a Python traceback: the exception and its message.
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Failed|Refused)\b")
# Seconds gunicorn gets to have every worker running the new release after a reload.
GUNICORN_WAIT = 30
ENV_HEADER = (
    "Written by `fab deploy` (deploy_tools/fabfile.py). It rewrites the keys it manages on\n"
    "every deploy and keeps DJANGO_SECRET_KEY, DATABASE_URL and any key you add."
)
# Taken from the deploying shell's environment; unset there means removed from the server.
PASSED_THROUGH = (
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "DEFAULT_FROM_EMAIL",
    "LOGIN_TOKEN_MAX_AGE",
    "LOGIN_EMAILS_PER_HOUR",
)
# The keys every app host of a site must share: a key per host signs sessions, login links'
# and messages that the other hosts refuse.
SHARED_SECRETS = ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY_FALLBACKS")
# Within one `fab -H web1,web2 ...` (one process, the hosts in turn): per site name, the first
# app host's (name, secrets) for deploy, and its key's fingerprint for status.
_FIRST_HOST = {}
# The server's own CA bundle (e.g. one that trusts a staging mail server's certificate).
SERVER_SSL_CERT_FILE = "SERVER_SSL_CERT_FILE"


@dataclass(frozen=True)
class Site:
    """Everything a task needs to know about the site it works on."""

    paths: SitePaths
    user: str
    init: str  # "systemd" or "supervisor": the key of its manager in services.MANAGERS
    workers: int = 2
    port: int = 80
    listen_address: str = ""
    site_url: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    behind: str = ""  # the load balancer's address, when this is one app host of several
    host: str = ""  # the host as fab -H named it
    staging: bool = False

    @property
    def host_label(self):
        """How X-Served-By names this app host: as fab -H named it."""
        return self.host or self.listen_address

    @property
    def services(self):
        """The service manager the host runs (Systemd or Supervisor), chosen once by init."""
        return MANAGERS[self.init]

    @property
    def https(self):
        """Whether visitors use https: nginx here has the certificate, or the balancer does."""
        return bool(self.tls_cert) or (bool(self.behind) and self.url.startswith("https://"))

    @property
    def service(self):
        """The gunicorn service's name; an app host behind a balancer adds its deploy user.

        One host normally runs one copy of a site, so the site's name is enough. App hosts
        behind a balancer run the same site; where several share one supervisord (the
        loopback rehearsal's app hosts are users of one machine), each needs its own name.
        """
        if not self.behind or self.init == "systemd":
            return self.paths.service
        return f"{self.paths.service}-{re.sub(r'[^A-Za-z0-9_-]', '_', self.user)}"

    @property
    def url(self):
        if self.site_url:
            return self.site_url.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        default_port = 443 if self.tls_cert else 80
        suffix = "" if self.port == default_port else f":{self.port}"
        return f"{scheme}://{self.paths.sitename}{suffix}"

    @property
    def allowed_hosts(self):
        hosts = [self.paths.sitename]
        if self.listen_address and self.listen_address not in hosts:
            hosts.append(self.listen_address)
        return ",".join(hosts)


# --- tasks ------------------------------------------------------------------------------

# A site's options, declared once: name, default and help. provision and deploy take them
# all, the other tasks the site name only; `site_task` adds them to the task's flags.
SITE_OPTIONS = {
    "sitename": ("", "the site's folder under ~/sites/ and nginx server name (default: the host)"),
    "workers": (2, "gunicorn worker processes (default 2)"),
    "port": (0, "the port nginx listens on for this site (default 80, or 443 with --tls-cert)"),
    "listen_address": ("", "the address nginx listens on for this site (default: all)"),
    "site_url": ("", "the site's absolute URL for login emails (default: http://SITENAME[:PORT])"),
    "tls_cert": ("", "path of the TLS certificate on the server (turns on https)"),
    "tls_key": ("", "path of the TLS private key on the server"),
    "behind": (
        "",
        "the load balancer's address when this is one app host of several: nginx trusts its "
        "X-Real-IP and X-Forwarded-Proto (https at the balancer: give an https --site-url)",
    ),
}


def site_task(options=tuple(SITE_OPTIONS), **help):
    """A Fabric task whose flags are the named site options and its own; it gets `site`, a dict."""

    # invoke builds a task's flags from its signature, so the wrapper shows one with the site's
    # options spelled out; the body receives them together instead of repeating each one.
    def decorate(body):
        own = list(inspect.signature(body).parameters.values())
        assert [param.name for param in own[:2]] == ["c", "site"], body.__name__
        added = [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
            for name, (default, _) in ((name, SITE_OPTIONS[name]) for name in options)
        ]

        @functools.wraps(body)
        def with_site_options(c, *args, **kwargs):
            site = {name: kwargs.pop(name, SITE_OPTIONS[name][0]) for name in options}
            return body(c, site, *args, **kwargs)

        with_site_options.__signature__ = inspect.Signature([own[0], *added, *own[2:]])
        flags = {name.replace("_", "-"): SITE_OPTIONS[name][1] for name in options}
        return task(auto_shortflags=False, help={**flags, **help})(with_site_options)

    return decorate


@site_task()
def provision(c, site):
    """Prepare a server for a site: folders, the gunicorn service and the nginx site."""
    with _friendly_errors("provision"):
        conn = _connect(c)
        site = _site(conn, **site)
        _step("check the host", _check_host, conn, site)
        _step("make the site's folders", _make_folders, conn, site)
        _step("install the gunicorn service and nginx site", _update_services, conn, site)
        print(f"Provisioned {site.paths.root} ({site.init}); next: fab deploy.")


@site_task(
    staging="mark the server as staging (allows the FT-only management commands)",
    worktree="ship the working tree (tracked and untracked files) instead of HEAD",
    **{
        "rotate-secret-key": "a new DJANGO_SECRET_KEY; the old one stays as the one fallback",
        "allow-destructive": "apply migrations that drop, rename or require columns even "
        "though the running release still uses them (see README: Migrations)",
        "balancer": "user@host of the load balancer: each app host is taken out of it while "
        "it switches and put back once it answers (a rolling deploy)",
    },
)
def deploy(
    c,
    site,
    staging=False,
    worktree=False,
    rotate_secret_key=False,
    allow_destructive=False,
    balancer="",
):
    """Build and check the local commit on the server, then switch to it (and back if it fails)."""
    started = time.monotonic()
    with _friendly_errors("deploy"):
        conn = _connect(c)
        passed = _passed_through_settings(os.environ)
        release = releases.build(worktree)
        site = _site(conn, **site, staging=staging)
        # Reached before anything is built: a rolling deploy that cannot reach it stops here.
        lb = _step(f"reach the balancer {balancer}", _connect_to, balancer) if balancer else None
        if lb and site.behind:
            _step("the site's secret key", _no_key_of_its_own, conn, site, lb)
        _step("make the site's folders", _make_folders, conn, site)
        live = _live_release(conn, site)
        # Everything until the switch happens beside the live release: if it fails, the
        # site is exactly as it was.
        with _nothing_changed_if_it_fails(conn, site, release, live):
            _step("upload the source", _upload_source, conn, site, release)
            _step("build the virtualenv", _build_virtualenv, conn, site, release)
            env_changed = _step(
                "write the release's .env", _update_dotenv, conn, site, release, passed,
                rotate_secret_key,
            )  # fmt: skip
            if not remote.ok(conn, f"test -f {q(site.paths.release(release.name) / BUILT)}"):
                _step("collect static files", _collect_static, conn, site, release)
                _step("check the release", _check_release, conn, site, release)
                conn.run(f"touch {q(site.paths.release(release.name) / BUILT)}", hide=True)
            # Even with the same release: the .env may name another database now (say, the
            # new PostgreSQL host's), which has none of the migrations yet.
            plan = _step(
                "plan the migrations", _plan_migrations, conn, site, release, live,
                allow_destructive,
            )  # fmt: skip
        _step("migrate the database", _migrate, conn, site, release, plan, live)
        remote.write_if_changed(conn, site.paths.site_settings, _site_settings(site))
        with _out_of_balancer(conn, site, lb, release.name != live or env_changed):
            how = _step("switch to the release", _switch, conn, site, release.name)
            if env_changed and not how:
                how = "hup"
            try:
                _step("update the gunicorn service and nginx site", _update_services, conn, site)
                _step("reload gunicorn", _reload_gunicorn, conn, site, release.name, how)
                answer = _step("check the site answers through nginx", _check_live, conn, site)
                _step(
                    "preflight: settings, host, migrations, static files, workers",
                    _preflight, conn, site,
                )  # fmt: skip
            except _StepFailed as failed:
                _switch_back(conn, site, release, live, failed)
        if how or not remote.ok(conn, f"grep -q {q(release.name)} {q(site.paths.deploy_log)}"):
            _log_event(conn, site, "deployed", release.name, release.subject)
        if how:  # with no switch there is nothing new to keep or to let go
            _step("remove old releases", _prune_releases, conn, site)
        staging_note = " (staging)" if staging else ""
        print(
            f"Deployed {release.name} to {site.url}{staging_note} ({answer}) "
            f"in {time.monotonic() - started:.1f} s."
        )


@site_task(
    ("sitename",),
    to="the commit (or its first characters) of a kept release (default: the previous one)",
    yes="go on although the database has migrations the target release does not know",
    balancer="user@host of the load balancer: the app host is out of it while it switches",
)
def rollback(c, site, to="", yes=False, balancer=""):
    """Make the previous (or a named) kept release live again; switch back if it fails."""
    started = time.monotonic()
    with _friendly_errors("rollback"):
        conn = _connect(c)
        site = _existing_site(conn, site["sitename"])
        state = _server_state(conn, site)
        live = state.live
        target = _rollback_target(state, to)
        unknown = _unknown_migrations(conn, site, target)
        if unknown and not yes:
            raise DeployError(
                f"{target} does not know these migrations, which are applied to the database: "
                f"{', '.join(unknown)}. Its code must work with them (it does if they only add "
                f"tables or nullable columns). Nothing changed on the server: {live} is still "
                f"live. To roll back anyway: the same command with --yes."
            )
        subject = state.subjects.get(target, "")
        lb = _step(f"reach the balancer {balancer}", _connect_to, balancer) if balancer else None
        with _out_of_balancer(conn, site, lb):
            how = _step("switch to the release", _switch, conn, site, target)
            try:
                _step("reload gunicorn", _reload_gunicorn, conn, site, target, how)
                answer = _step("check the site answers through nginx", _check_live, conn, site)
            except _StepFailed as failed:
                target_release = releases.Release(target, b"", "", subject)
                _switch_back(conn, site, target_release, live, failed)
        _log_event(conn, site, "rolled back", target, subject)
        print(
            f"Rolled back: {target} ({subject[:60]}) is live instead of {live} ({answer}) "
            f"in {time.monotonic() - started:.1f} s."
        )


@site_task(("sitename",))
def status(c, site):
    """Say what is live: commit, when and from where it was deployed, releases, workers, answer."""
    with _friendly_errors("status"):
        conn = _connect(c)
        site = _existing_site(conn, site["sitename"])
        state = _server_state(conn, site)
        answer = _check_live(conn, site, timeout=3, fail=False)
        print(state.describe(site, answer))
        if site.behind:
            _same_key_as_first_host(conn, site)


@site_task(("sitename",), lines="how many lines of each log (default 50)")
def logs(c, site, lines=50):
    """Show the site's latest log records in time order: each request once, tracebacks whole."""
    with _friendly_errors("logs"):
        conn = _connect(c)
        paths = SitePaths.for_connection(conn, site["sitename"] or conn.host)
        # With fab -H web1,web2 logs, each host's records follow its own heading.
        print(f"== {paths.sitename} on {conn.host}: {paths.logs}")
        for record in _log_records(conn, paths)[-int(lines) :]:
            print("\n".join(record.shown()))


@site_task(
    ("sitename", "listen_address", "tls_cert", "tls_key"),
    app_hosts="the app hosts, comma-separated, as their nginx serves the site (deploy "
    "--listen-address and --port): 10.0.0.3,10.0.0.4 (port 80 unless given)",
)
def provision_balancer(c, site, app_hosts=""):
    """nginx in front of the app hosts: TLS, passive health checks, the visitor's address."""
    with _friendly_errors("provision-balancer"):
        hosts = balancer.parse_app_hosts(app_hosts)
        conn = _connect(c)
        site = _site(conn, **site)
        _step("check the host", _check_host, conn, site)
        _step("make the site's folders", _make_folders, conn, site)
        _step("write the nginx site and upstream list", _write_balancer, conn, site, hosts)
        answer = _check_live(conn, site, timeout=3, fail=False)
        print(
            f"The balancer for {site.url} sends to {', '.join(hosts)}; it answers {answer}. "
            f"Deploy each app host with --behind {site.listen_address or conn.host} and "
            f"--balancer {conn.user}@{conn.host}."
        )


@task(
    auto_shortflags=False,
    help={"command": 'the management command and its arguments, e.g. "showmigrations"'},
)
def manage(c, command, sitename=""):
    """Run a management command on the server with the site's .env loaded."""
    with _friendly_errors("manage"):
        words = shlex.split(command)
        if not words:
            raise DeployError('Name a management command, e.g. fab manage "showmigrations".')
        conn = _connect(c)
        paths = SitePaths.for_connection(conn, sitename or conn.host)
        result = conn.run(paths.manage(*words), warn=True, in_stream=False)
        if result.exited:
            raise Exit(f"manage.py {command} failed (exit status {result.exited}).", result.exited)


@task(
    auto_shortflags=False,
    help={
        "sitename": "the site the database is for (its role and database are named after it)",
        "listen-address": "the database host's address the app hosts reach PostgreSQL on",
        "app-hosts": "comma-separated user@host of the app hosts whose .env gets DATABASE_URL",
        "port": f"PostgreSQL's port (default {database.PORT})",
        "clients": "comma-separated addresses the app hosts connect from (default: the "
        "addresses the app hosts were reached at)",
        "replace": "replace a DATABASE_URL an app host has for another database (stop the site "
        "and move its data: README, Moving a SQLite site to PostgreSQL)",
    },
)
def provision_database(
    c, sitename="", listen_address="", app_hosts="", port=database.PORT, clients="", replace=False
):
    """PostgreSQL for a site on this host (Debian's packages), its DATABASE_URL on the app hosts."""
    with _friendly_errors("provision-database"):
        conn = _connect(c)
        if not sitename or not listen_address:
            raise DeployError(
                "Name the site and the address PostgreSQL listens on: --sitename SITE "
                "--listen-address ADDRESS (this host's address the app hosts reach)."
            )
        apps = _step("connect to the app hosts", database.app_host_connections, c.config, app_hosts)
        found = database.client_addresses(clients, apps)
        url, changes = _step(
            "provision PostgreSQL", database.provision, conn, sitename, listen_address, found, port
        )
        print("\n".join(f"    {change}" for change in changes) or "    nothing changed")
        for app in apps:
            said = _step(
                f"write DATABASE_URL on {app.host}", database.write_database_url, app, sitename,
                url, replace,
            )  # fmt: skip
            print(f"{app.host}: {said}")


# --- steps (each safe to run twice) ------------------------------------------------------


def _check_host(conn, site):
    """Refuse, with what to do, when the host lacks what the chosen service manager needs."""
    site.services.check_host(conn, site)


def _make_folders(conn, site):
    """Create the site's folders; nginx's workers must be able to traverse the home folder."""
    p = site.paths
    logs = [p.logs / name for name in ("nginx-access.log", "nginx-error.log")]
    remote.run(
        conn,
        f"chmod o+x {q(p.home)} && mkdir -p {q(p.releases)} {q(p.venvs)} {q(p.logs)} && "
        f"chmod 755 {q(p.sites)} {q(p.root)} {q(p.releases)} && "
        # nginx (root) appends to these; creating them here keeps them ours. Logs (and the
        # addresses in them) are for the site's user only; supervisord's own file is root's.
        f"touch {' '.join(q(log) for log in logs)} && chmod 700 {q(p.logs)} && "
        f'find {q(p.logs)} -type f -user "$(id -u)" -exec chmod go-rwx {{}} + && '
        # Sites deployed before releases had their own .env: the live one gets a copy.
        f"cd {q(p.root)} && if [ -L source/.env ] && [ -f .env ] && [ ! -L .env ]; then "
        f"cp -p .env source/.env.copy && mv source/.env.copy source/.env; fi",
    )


def _live_release(conn, site):
    """The name of the live release, or "" before the first deploy."""
    link = remote.read_command(conn, f"readlink {q(site.paths.source)} || true").strip()
    return PurePosixPath(link).name if link else ""


def _upload_source(conn, site, release):
    """Ship the release's archive into its own folder, unless the server has it already."""
    folder = site.paths.release(release.name)
    if remote.ok(conn, f"test -f {q(folder / '.complete')}"):
        return False
    unpacking = site.paths.releases / f".{release.name}.partial"
    remote.pipe(
        conn,
        f"rm -rf {q(unpacking)} && mkdir -p {q(unpacking)} && tar -x -C {q(unpacking)} && "
        f"touch {q(unpacking / '.complete')} && rm -rf {q(folder)} && "
        f"mv {q(unpacking)} {q(folder)}",
        release.archive,
    )
    return True


def _build_virtualenv(conn, site, release):
    """Give the release the virtualenv of its requirements.txt, built once beside the live one."""
    # A venv cannot be moved (its scripts name its path), so it is built where it stays and
    # marked complete at the end; a half-built one is started again.
    venv = site.paths.venvs / release.requirements_hash[:16]
    folder = site.paths.release(release.name)
    built = remote.run(
        conn,
        f"if [ ! -f {q(venv / '.complete')} ]; then rm -rf {q(venv)} && "
        f"/usr/bin/python3 -m venv {q(venv)} && "
        f"{q(venv / 'bin' / 'pip')} install --quiet --disable-pip-version-check "
        f"-r {q(folder / 'requirements.txt')} && touch {q(venv / '.complete')} && echo built; "
        f"fi && ln -sfn {q(venv)} {q(folder / '.venv')}",
    ).stdout
    return "built" in built


def _update_dotenv(conn, site, release, passed_through, rotate_secret_key=False):
    """Write the release's own .env (secret key kept); return whether the live one differs."""
    p = site.paths
    live = remote.read_remote(conn, p.env)
    values = dotenv_values_for(site, parse_dotenv(live), passed_through, rotate_secret_key)
    if site.behind:
        values = _same_secrets_on_every_host(site, values)
    text = format_dotenv(values, header=ENV_HEADER)
    path = p.release(release.name) / ".env"
    # Releases unpacked before each had its own .env hold a link there: replace it.
    if remote.ok(conn, f"test -L {q(path)}") or remote.read_remote(conn, path) != text:
        remote.write_file(conn, path, text, mode="600")
    return text != live


def dotenv_values_for(site, existing, passed_through, rotate_secret_key=False):
    """The .env a deploy writes, given the server's current one and the local settings."""
    p = site.paths
    values = {
        # Generated once: a new key on every deploy would log everyone out.
        "DJANGO_SECRET_KEY": existing.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
        "DJANGO_DEBUG_FALSE": "1",
        "DJANGO_ALLOWED_HOSTS": site.allowed_hosts,
        "SITENAME": p.sitename,
        "SITE_URL": site.url,
        "LOG_DIR": str(p.logs),
        # Kept when set on the server, e.g. to a postgres:// URL.
        "DATABASE_URL": existing.get("DATABASE_URL") or f"sqlite:///{p.database}",
    }
    if rotate_secret_key and existing.get("DJANGO_SECRET_KEY"):
        # The retired key stays as the only fallback, so sessions signed with it live on
        # until the next rotation; the key retired before that is dropped.
        values["DJANGO_SECRET_KEY_FALLBACKS"] = existing["DJANGO_SECRET_KEY"]
        values["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    if site.https:
        values["DJANGO_SECURE_HTTPS"] = "1"
    if site.behind:
        # Which app host answered, in every response's X-Served-By (with the worker's pid).
        values["SUPERLISTS_HOST_LABEL"] = site.host_label
    values.update(passed_through)
    # Only an explicit --staging makes a server accept the FT-only commands.
    if site.staging:
        values["SUPERLISTS_STAGING"] = "1"
    # STATIC_ROOT is left to the settings' default, the release's own static/ folder.
    managed = {*values, *PASSED_THROUGH, "SSL_CERT_FILE", "DJANGO_SECURE_HTTPS", "STATIC_ROOT"}
    managed.add("SUPERLISTS_HOST_LABEL")
    managed.add("SUPERLISTS_STAGING")
    values.update({key: value for key, value in existing.items() if key not in managed})
    return values


def _collect_static(conn, site, release):
    """Collect static files into the release's own static/ (nginx serves the live one's)."""
    remote.run(
        conn,
        site.paths.manage("collectstatic", "--noinput", "-v", "0", release=release.name),
    )


def _check_release(conn, site, release):
    """Django's deploy checks and a migration for every model change, before going live."""
    p = site.paths
    result = remote.run(conn, p.manage("check", "--deploy", release=release.name), warn=True)
    said = (result.stderr + result.stdout).strip()
    allowed = set() if site.https else HTTPS_ONLY_WARNINGS
    unexpected = sorted(set(re.findall(r"\((\w+\.[A-Z]\d+)\)", said)) - allowed)
    if result.exited or unexpected:
        raise DeployError(
            f"manage.py check --deploy found problems in {release.name} "
            f"({', '.join(unexpected) or f'exit status {result.exited}'}):\n{_tail(said)}"
        )
    result = remote.run(
        conn,
        p.manage("makemigrations", "--check", "--dry-run", release=release.name),
        warn=True,
    )
    if result.exited:
        hints = "".join(f"\n{hint}" for hint in releases.uncommitted_migrations(release))
        raise DeployError(
            f"{release.name} has model changes that no migration in it covers "
            f"(makemigrations --check):\n{_tail(result.stdout + result.stderr)}{hints}\n"
            f"Run python manage.py makemigrations, commit the migration and deploy again."
        )


def _plan_migrations(conn, site, release, live, allow_destructive):
    """List the migrations the release will apply; refuse the ones the live release can't bear."""
    plan = json.loads(_run_script(conn, site, release.name, "migration_check.py", "plan"))
    if plan:
        names = ", ".join(step["migration"] for step in plan)
        print(f"    will apply {len(plan)} migration(s): {names}")
    breaking = [step for step in plan if step["breaks"]]
    # With nothing live yet, nothing can break.
    if breaking and live and not allow_destructive:
        listed = "; ".join(f"{s['migration']} {', '.join(s['breaks'])}" for s in breaking)
        raise DeployError(
            f"{listed}. The release still running would fail against that until the switch "
            f"(and after a rollback). Ship the code that stops using it first and the "
            f"migration in a later release (README: Migrations), or deploy again with "
            f"--allow-destructive to apply it anyway."
        )
    return [step["migration"] for step in plan]


def _migrate(conn, site, release, plan, live):
    """Apply the release's new migrations; the live release keeps working with them."""
    if not plan:
        return
    result = remote.run(
        conn,
        site.paths.manage("migrate", "--noinput", "-v", "0", release=release.name),
        warn=True,
    )
    if result.exited:
        _log_event(conn, site, "migrations failed", release.name, release.subject)
        still = f"{live} is still live" if live else "no release is live"
        raise DeployError(
            f"manage.py migrate failed for {release.name}:\n"
            f"{_tail(result.stderr + result.stdout)}\nThe site was not switched: {still}. "
            f"Migrations applied before the failing one stay applied "
            f'(fab manage "showmigrations" lists them).'
        )


def _switch(conn, site, name):
    """Point `source` at a release by renaming a symlink; say how gunicorn must pick it up."""
    p = site.paths
    target = f"releases/{name}"
    # A new venv means new libraries, which only a fresh gunicorn master loads.
    answer = remote.run(
        conn,
        f"cd {q(p.root)} && test -f {q(target)}/{BUILT} && old=$(readlink source || true) && "
        f'if [ "$old" = {q(target)} ]; then echo same; else '
        f'if [ -n "$old" ] && [ "$(readlink "$old/.venv")" = "$(readlink {q(target)}/.venv)" ]; '
        f"then echo hup; else echo restart; fi; "
        f"ln -sfn {q(target)} source.new && mv -T source.new source; fi && "
        f'if [ "$(readlink .env)" != source/.env ]; then '
        f"ln -sfn source/.env .env.new && mv -T .env.new .env; fi",
    ).stdout.strip()
    return "" if answer == "same" else answer


def _update_services(conn, site):
    """Render the gunicorn service and nginx site; apply only what changed."""
    p = site.paths
    previous_nginx = remote.read_remote(conn, p.nginx_conf)
    nginx_changed = remote.write_if_changed(
        conn, p.nginx_conf, render_nginx_site(site), current=previous_nginx
    )
    service_changed = remote.write_if_changed(
        conn, site.services.service_file(p), render_service(site)
    )
    live = remote.ok(conn, f"test -e {q(p.source / 'manage.py')}")
    site.services.install(conn, site, live, service_changed)
    if nginx_changed:
        _reload_nginx(conn, site, previous_nginx)
    return nginx_changed or service_changed


def _write_balancer(conn, site, hosts):
    """The balancer's nginx site and upstream list; hosts taken out stay out."""
    p = site.paths
    upstream = balancer.upstream_file(p)
    _, down = balancer.parse_upstream(remote.read_remote(conn, upstream))
    changed = remote.write_if_changed(conn, upstream, balancer.upstream_text(hosts, down))
    # The site's own pages for the balancer's own errors: no app host answers (502-504), or a
    # body over the limit (413). What an app host answers passes through as it is.
    remote.run(conn, f"mkdir -p {q(balancer.error_pages(p))}")
    for page in sorted((HERE / "error_pages").glob("*.html")):
        remote.write_if_changed(conn, balancer.error_pages(p) / page.name, page.read_text())
    previous = remote.read_remote(conn, p.nginx_conf)
    text = balancer.render_site(
        p, site.allowed_hosts.split(","), site.listen_address, site.tls_cert, site.tls_key, render
    )
    changed |= remote.write_if_changed(conn, p.nginx_conf, text, current=previous)
    site.services.link_nginx(conn, site)
    if changed:
        _reload_nginx(conn, site, previous)


@contextlib.contextmanager
def _out_of_balancer(conn, site, lb, needed=True):
    """Take this app host out of the balancer (lb: a connection) for the switch, then back."""
    if not lb or not needed:
        yield
        return
    lb_site = _site(lb, site.paths.sitename)
    member = f"{site.listen_address or conn.host}:{site.port}"
    out = [lb, lb_site.paths, lb_site.services, member]
    _step(f"take {member} out of the balancer", balancer.set_down, *out, True)
    try:
        yield
    except _StepFailed:
        # Switched back (or not): it goes back in only if it answers.
        if "HTTP 2" in _check_live(conn, site, timeout=5, fail=False):
            _step(f"put {member} back in the balancer", balancer.set_down, *out, False)
        else:
            print(f"  {member} stays out of the balancer: it does not answer.")
        raise
    _step(f"put {member} back in the balancer", balancer.set_down, *out, False)


def _connect_to(host):
    """A verified connection to another host of the site (user@host), as -H would make it."""
    return connect.open_connection(
        connect.adopt(
            Connection(host, connect_timeout=10), names=connect.DEPLOY_NAMES, user_named="@" in host
        )
    )


def _no_key_of_its_own(conn, site, lb):
    """Refuse to generate a key on a new app host while its peers serve with theirs."""
    if parse_dotenv(remote.read_remote(conn, site.paths.env)).get("DJANGO_SECRET_KEY"):
        return  # kept as it is, or replaced by the first host's of this run
    if ("deploy", site.paths.sitename) in _FIRST_HOST:
        return  # gets the key of the first app host of this run
    lb_paths = _site(lb, site.paths.sitename).paths
    hosts, _ = balancer.read_upstream(lb, lb_paths)
    member = f"{site.listen_address}:{site.port}"
    # Asked from the balancer, as it asks them: a peer that answers has the site's key.
    proto = ["--forwarded-proto", "https"] if site.https else []
    serving = [
        host
        for host in hosts
        if host != member
        and remote.ok(
            lb,
            remote.script(
                "smoke_check.py",
                "http",
                *host.rsplit(":", 1),
                site.paths.sitename,
                "--timeout",
                "1",
                *proto,
            ),
        )
    ]
    if serving:
        raise DeployError(
            f"{site.host_label} has no DJANGO_SECRET_KEY yet, and the balancer already sends "
            f"visitors to {', '.join(serving)}: a key made here would differ from theirs, and "
            f"sessions and login links made on one would be refused by the other. Deploy it "
            f"with a host that has the key, which it then gets: fab -H <that host>,"
            f"{conn.user}@{conn.host} deploy … Nothing changed on {site.host_label}."
        )


def _key_fingerprint(dotenv_text):
    key = parse_dotenv(dotenv_text).get("DJANGO_SECRET_KEY", "")
    return hashlib.sha256(key.encode()).hexdigest()[:12] if key else "none"


def _same_key_as_first_host(conn, site):
    """fab status on several app hosts: each must run with the first one's secret key."""
    mine = _key_fingerprint(remote.read_remote(conn, site.paths.env))
    first, theirs = _FIRST_HOST.setdefault(("status", site.paths.sitename), (site.host_label, mine))
    print(f"DJANGO_SECRET_KEY: sha256 {mine}…")
    if theirs != mine:
        raise DeployError(
            f"{site.host_label} runs with another DJANGO_SECRET_KEY than {first} (sha256 "
            f"{mine}… against {theirs}…): a session or login link made on one app host is "
            f"refused by the other, so visitors are logged out at random as the balancer "
            f"alternates. fab -H <every app host> deploy gives them all the first one's key."
        )


def _same_secrets_on_every_host(site, values):
    """The first app host deployed in this run sets the site's key; the others get it."""
    mine = {name: values.get(name, "") for name in SHARED_SECRETS}
    first, shared = _FIRST_HOST.setdefault(("deploy", site.paths.sitename), (site.host_label, mine))
    if shared == mine:
        return values
    print(
        f"    {site.host_label} gets {first}'s DJANGO_SECRET_KEY (and fallbacks): one key for "
        f"the whole site, or sessions made on one app host vanish on the other."
    )
    values = {**values, **shared}
    return {name: value for name, value in values.items() if value or name not in shared}


def _reload_nginx(conn, site, previous):
    """Make nginx load the site's new configuration; if it refuses, put the previous one back."""
    # nginx includes every site's file: a refused one left in place would make every later
    # reload on the host fail, for every site.
    refusal = site.services.reload_nginx(conn)
    if not refusal:
        return
    path = site.paths.nginx_conf
    if previous:
        remote.write_file(conn, path, previous)
        undone = "The previous one is back in place, and nginx still serves it"
    else:
        remote.run(conn, f"rm -f {q(path)}")
        # A dangling link in the folder nginx includes would fail its next reload too.
        site.services.remove_nginx_link(conn, site)
        undone = "It was removed, and nginx runs on as before"
    raise DeployError(
        f"nginx refused the site's new configuration ({refusal}). {undone}: check the "
        f"--tls-cert/--tls-key paths and the other options, then try again."
    )


def _check_live(conn, site, timeout=15, fail=True):
    """Ask nginx for the home page from the server itself: a release that serves errors failed."""
    settings = site_address(site)
    result = remote.run(
        conn,
        f"/usr/bin/python3 -c {shlex.quote(_script('smoke_check.py'))} "
        f"{settings['SCHEME']} {q(settings['ADDRESS'])} {settings['PORT']} "
        f"{q(site.paths.sitename)} --timeout {timeout}"
        # Behind a balancer that terminates TLS, ask as the balancer does.
        + (" --forwarded-proto https" if site.behind and site.https else ""),
        warn=True,
    )
    answer = (result.stdout.strip() or result.stderr.strip() or "nothing").splitlines()[-1]
    if result.ok or not fail:
        return answer
    raise HealthCheckFailed(
        f"{settings['SCHEME']}://{settings['ADDRESS']}:{settings['PORT']}/ "
        f"(Host: {site.paths.sitename}) answered {answer}",
        answer,
    )


def _preflight(conn, site):
    """The staging FTs' preflight, run by the live release: each problem named, or none."""
    scheme = "https" if site.tls_cert else "http"
    nginx = f"{scheme}://{site.listen_address or '127.0.0.1'}:{site.port}"
    host = urlsplit(site.url).hostname
    result = remote.run(
        conn,
        site.paths.manage("preflight", "--host", host, "--through", nginx),
        warn=True,
    )
    if not result.ok:
        said = (result.stdout.strip() + "\n" + result.stderr.strip()).strip()
        raise DeployError(f"The release is live, but its preflight failed:\n{said}")
    return result.stdout


def _reload_gunicorn(conn, site, name, how):
    """Start gunicorn if it is down, else reload it as `how` says; wait for workers on `name`."""
    p, services = site.paths, site.services
    # HUP makes gunicorn's master chdir through `source` again and fork new workers there
    # (no --preload: the app is imported by each worker); the old ones finish their requests
    # first. Then every worker must be running in the release's folder, or it is not live.
    command = remote.script(
        "gunicorn_workers.py", "reload", services.pid_command(site.service), p.release(name),
        "--how", how, "--start", services.start_command(site.service),
        "--restart", services.restart_command(site.service), "--timeout", GUNICORN_WAIT,
    )  # fmt: skip
    result = remote.run(conn, command, warn=True)
    if result.exited:
        # A Python that cannot run the script says why on stderr (its last line).
        said = result.stdout.strip() or (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DeployError(f"gunicorn did not come up on {name} within {GUNICORN_WAIT} s ({said})")
    return int(result.stdout.split()[-1])


def _switch_back(conn, site, release, live, failed):
    """The release failed once live: make the previous one live again and say what happened."""
    failure = _say(failed.error)
    request_id = re.search(r"request-id=(\S+)", failure)
    log_lines, raw = _request_log_lines(conn, site, request_id.group(1) if request_id else "")
    cause = _last_exception_line(raw)
    if not live:
        _log_event(conn, site, "failed its health check", release.name, release.subject)
        said = (
            f"{release.name} failed its health check: {failure}{cause}. There is no earlier "
            f"release to switch back to.\nThe server's log lines:\n{log_lines}"
        )
        raise _StepFailed(failed.title, DeployError(said))
    how = _switch(conn, site, live)
    try:
        _reload_gunicorn(conn, site, live, how or "hup")
        again = f"it answers {_check_live(conn, site)}"
    except (DeployError, UnexpectedExit) as error:
        again = f"but it fails too: {_say(error)}"
    _log_event(conn, site, "failed its health check, switched back", release.name, release.subject)
    said = (
        f"{release.name} failed its health check: {failure}{cause}.\n"
        f"Switched back automatically: {live} is live again ({again}).\n"
        f"The server's log lines for that request:\n{log_lines}"
    )
    raise _StepFailed(failed.title, DeployError(said))


def _log_records(conn, paths):
    """The site's log records, merged in time order, each once (see deploy_tools/serverlogs.py)."""
    output = remote.read_command(conn, f"date +%z; {serverlogs.read_command(paths.logs, {})}")
    offset, _, text = output.partition("\n")
    found = serverlogs.window(text, None, serverlogs.offset_zone(offset.strip() or "+0000"))
    # nginx's access log has every request; gunicorn's has the same ones again.
    return [record for record in found if record.source != "gunicorn-access.log"]


def _request_log_lines(conn, site, request_id):
    """The site's log records of one request, tracebacks whole; else the latest records."""
    found = _log_records(conn, site.paths)
    mine = serverlogs.for_request(found, request_id) if request_id else []
    shown = mine or found[-10:]
    raw = "\n".join(line for record in shown for line in record.lines)
    return "\n".join(line for record in shown for line in record.shown()), raw


def _last_exception_line(log_lines):
    """The exception a traceback ends with, e.g. " (RuntimeError: boom)", or ""."""
    for line in reversed(log_lines.splitlines()):
        if EXCEPTION_LINE.match(line.strip()):
            return f" ({line.strip()[:200]})"
    return ""


def _log_event(conn, site, event, name, subject=""):
    """Append one line to the server's deploy log: when, what, which release, from where."""
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    fields = [event, name, who, " ".join(subject.split())]
    remote.run(
        conn,
        f"printf '%s\\t%s\\t%s\\t%s\\t%s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" "
        f"{' '.join(shlex.quote(field) for field in fields)} >> {q(site.paths.deploy_log)}",
    )


@contextlib.contextmanager
def _nothing_changed_if_it_fails(conn, site, release, live):
    """A failure while building says which step failed and that the site is as it was."""
    try:
        yield
    except _StepFailed as failed:
        still = f"{live} is still live." if live else "no release was live, and none is."
        with contextlib.suppress(UnexpectedExit):
            _log_event(
                conn, site, f"failed to build ({failed.title})", release.name, release.subject
            )
        cause, detail = _cause_and_detail(failed.error)
        said = f"{cause}\nNothing changed on the server: {still}" + (
            f"\n{detail}" if detail else ""
        )
        raise _StepFailed(failed.title, DeployError(said)) from None


def _prune_releases(conn, site):
    """Keep the live release and the ones live before it (for rollback); remove the rest."""
    p = site.paths
    state = _server_state(conn, site)
    if not state.live:
        return  # nothing known to be live: removing nothing is the safe mistake
    keep = state.kept_for_rollback(KEEP_RELEASES)
    remote.run(conn, remote.script("prune_releases.py", p.releases, p.venvs, *keep))


# --- what is on the server ------------------------------------------------------------------


def site_address(site):
    """Where nginx serves the site, as the server itself asks it."""
    return {
        "SCHEME": "https" if site.tls_cert else "http",
        "ADDRESS": site.listen_address or "127.0.0.1",
        "PORT": str(site.port),
    }


def _site_settings(site):
    """What rollback and status need to know of the last deploy's options."""
    values = {
        **site_address(site),
        "LISTEN_ADDRESS": site.listen_address,
        "TLS_CERT": site.tls_cert,
        "TLS_KEY": site.tls_key,
        "BEHIND": site.behind,
        "SITE_URL": site.site_url,
    }
    return format_dotenv(
        {key: value for key, value in values.items() if value},
        header="Written by fab deploy: how nginx serves the site, for fab rollback and status.",
    )


def _existing_site(conn, sitename):
    """The site as the last deploy left it on the server."""
    site = _site(conn, sitename)
    text = remote.read_remote(conn, site.paths.site_settings)
    if not text:
        raise DeployError(
            f"Nothing is deployed at {site.paths.root} on {conn.host} (no "
            f"{site.paths.site_settings.name}): deploy first, or name the site with --sitename."
        )
    values = parse_dotenv(text)
    return dataclasses.replace(
        site,
        port=int(values["PORT"]),
        listen_address=values.get("LISTEN_ADDRESS", ""),
        tls_cert=values.get("TLS_CERT", ""),
        tls_key=values.get("TLS_KEY", ""),
        behind=values.get("BEHIND", ""),
        site_url=values.get("SITE_URL", ""),
    )


@dataclass
class ServerState:
    """The site's releases, deploy log and gunicorn workers, as read in one command."""

    live: str = ""
    releases: list = dataclasses.field(default_factory=list)  # (name, built, mtime), newest first
    log: list = dataclasses.field(default_factory=list)  # (time, event, name, who, subject)
    master: str = ""
    workers: list = dataclasses.field(default_factory=list)  # (pid, folder)

    @classmethod
    def parse(cls, text):
        state = cls()
        for line in text.splitlines():
            kind, _, rest = line.partition("=")
            if kind == "live":
                state.live = PurePosixPath(rest).name if rest else ""
            elif kind == "release" and len(rest.split()) == 3:
                name, built, mtime = rest.split()
                state.releases.append((name, built == "built", int(mtime)))
            elif kind == "log" and rest.count("\t") >= 4:
                state.log.append(tuple(rest.split("\t", 4)))
            elif kind == "master":
                state.master = rest
            elif kind == "worker" and rest:
                pid, _, folder = rest.partition(" ")
                state.workers.append((pid, folder))
        state.releases.sort(key=lambda release: -release[2])
        return state

    @property
    def subjects(self):
        return {entry[2]: entry[4] for entry in self.log if entry[4]}

    @property
    def built(self):
        return [name for name, built, _ in self.releases if built]

    def last_event(self, name):
        return next((entry for entry in reversed(self.log) if entry[2] == name), None)

    def kept_for_rollback(self, count):
        """The live release and the ones live most recently before it: `count` at most."""
        went_live = [e[2] for e in self.log if e[1] in ("deployed", "rolled back")]
        keep = [self.live] if self.live else []
        for name in reversed(went_live):
            if len(keep) < count and name not in keep:
                keep.append(name)
        return keep

    def previous(self):
        """The kept release that was live most recently before the live one."""
        went_live = [e[2] for e in self.log if e[1] in ("deployed", "rolled back")]
        for name in reversed(went_live):
            if name != self.live and name in self.built:
                return name
        return ""

    def describe(self, site, answer):
        """What `fab status` prints."""
        subjects = self.subjects
        lines = []
        if self.live:
            event = self.last_event(self.live)
            lines.append(f"Live on {site.url}: {self.live} {subjects.get(self.live, '')}")
            if event:
                lines.append(f"  {event[1]} {event[0]} from {event[3]}")
        else:
            lines.append(f"Nothing is live on {site.url}.")
        lines.append("Kept releases, newest first (fab rollback --to NAME makes one live):")
        for name, built, mtime in self.releases:
            mark = "*" if name == self.live else " "
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(mtime))
            note = "" if built else "  (never finished building: cannot go live)"
            lines.append(f"  {mark} {name}  {when}  {subjects.get(name, '')}{note}")
        folders = sorted({PurePosixPath(folder).name for _, folder in self.workers})
        if self.master:
            lines.append(
                f"gunicorn: master {self.master}, {len(self.workers)} workers running "
                f"{', '.join(folders) or 'nothing'}"
            )
        else:
            lines.append("gunicorn: not running")
        lines.append(f"Home page through nginx: {answer}")
        if self.log:
            lines.append("Last entries of the deploy log:")
            lines += ["  " + "  ".join(entry) for entry in self.log[-5:]]
        return "\n".join(lines)


def _server_state(conn, site):
    """Read the site's releases, deploy log and gunicorn workers in one command."""
    p = site.paths
    releases = remote.script("site_state.py", p.root, p.deploy_log, "--built", BUILT)
    workers = remote.script("gunicorn_workers.py", "show", site.services.pid_command(site.service))
    return ServerState.parse(remote.read_command(conn, f"{releases}; {workers}"))


def _rollback_target(state, to):
    """The release a rollback makes live: the named one, else the one live before."""
    if not to:
        target = state.previous()
        if not target:
            raise DeployError(
                "There is no earlier kept release to roll back to (fab status lists them)."
            )
        return target
    matches = [name for name in state.built if name.startswith(to) or to.startswith(name)]
    unbuilt = [name for name, built, _ in state.releases if not built and name.startswith(to)]
    if not matches:
        extra = f" ({unbuilt[0]} never finished building)" if unbuilt else ""
        raise DeployError(
            f"No kept release matches {to!r}{extra}; the ones that can go live: "
            f"{', '.join(state.built) or 'none'}."
        )
    if len(matches) > 1:
        raise DeployError(f"{to!r} matches several releases ({', '.join(matches)}): say more.")
    if matches[0] == state.live:
        raise DeployError(f"{matches[0]} is already live.")
    return matches[0]


def _unknown_migrations(conn, site, name):
    """Migrations applied to the database that the release's code does not have."""
    return json.loads(_run_script(conn, site, name, "migration_check.py", "unknown"))


# --- rendering ----------------------------------------------------------------------------


def render(template_name, **values):
    """Fill a template from deploy_tools/templates, refusing a placeholder left unfilled."""
    text = (TEMPLATES / template_name).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        missing = text[text.index("{{") :].split("}}")[0] + "}}"
        raise ValueError(f"{template_name} still has {missing} after rendering.")
    return text


def gunicorn_command(site):
    """The gunicorn command line for the site, the same under systemd and supervisor."""
    p = site.paths
    return " ".join(
        [
            # Through `source`: a restart runs the live release's venv.
            str(p.venv / "bin" / "gunicorn"),
            f"--bind unix:{p.socket}",
            f"--workers {site.workers}",
            f"--chdir {p.source}",
            f"--access-logfile {p.logs / 'gunicorn-access.log'}",
            f"--error-logfile {p.logs / 'gunicorn.log'}",
            "--capture-output",
            "--no-control-socket",
            # The socket is srwxrwx---: its user and group (nginx's workers are in the group).
            "--umask 007",
            # Access lines without query strings: a login link's token never reaches the log.
            "--logger-class superlists.gunicorn_logging.PathOnlyLogger",
            "superlists.wsgi:application",
        ]
    )


def render_service(site):
    """The systemd unit or supervisor program that runs gunicorn for the site."""
    p = site.paths
    return render(
        site.services.template,
        sitename=p.sitename,
        service=site.service,
        user=site.user,
        root=p.root,
        logs=p.logs,
        gunicorn_command=gunicorn_command(site),
    )


def render_nginx_site(site):
    """The nginx server block(s) for the site; https when a certificate path is given."""
    p = site.paths
    address = f"{site.listen_address}:" if site.listen_address else ""
    tls_lines = redirect_block = ""
    listen = f"{address}{site.port}"
    if site.tls_cert:
        listen += " ssl"
        tls_lines = (
            f"    ssl_certificate {site.tls_cert};\n"
            f"    ssl_certificate_key {site.tls_key or site.tls_cert};\n"
        )
        redirect_block = (
            f"server {{\n    listen {address}80;\n    server_name {p.sitename};\n"
            f"    server_tokens off;\n    return 301 https://{p.sitename}$request_uri;\n}}\n"
        )
    instance = site.service.removeprefix("gunicorn-")
    log_format = f"superlists_{re.sub(r'[^A-Za-z0-9_]', '_', instance)}"
    return render(
        "nginx-site.conf",
        sitename=p.sitename,
        listen=listen,
        server_name=p.sitename,
        tls_lines=tls_lines,
        redirect_block=redirect_block,
        logs=p.logs,
        static=p.static,
        error_pages=p.source / "deploy_tools" / "error_pages",
        socket=p.socket,
        log_format=log_format,
        forwarded_proto=f"${log_format}_proto" if site.behind else "$scheme",
        behind_lines=_behind_lines(site, log_format),
        real_ip_lines=(
            f"    # The balancer's X-Real-IP is the visitor's address (per-IP limits, logs).\n"
            f"    set_real_ip_from {site.behind};\n    real_ip_header X-Real-IP;\n"
            if site.behind
            else ""
        ),
        known_hosts="|".join(re.escape(host) for host in site.allowed_hosts.split(",")),
    )


def _behind_lines(site, name):
    """Behind a balancer: its X-Real-IP is the client's address, its scheme header trusted."""
    if not site.behind:
        return ""
    # Only the balancer (and this host itself, e.g. the deploy's health check) may say the
    # visitor came over https; anyone else reaching the app host directly gets $scheme.
    trusted = dict.fromkeys([site.behind, "127.0.0.1"])
    lines = "".join(f"    {address} $http_x_forwarded_proto;\n" for address in trusted)
    return f"map $realip_remote_addr ${name}_proto {{\n{lines}    default $scheme;\n}}\n"


# --- plumbing ------------------------------------------------------------------------------


def _connect(c):
    """The task's connection with the host key verified, or a refusal when there is no host."""
    if not isinstance(c, Connection):
        raise DeployError(
            "This task works on a server: name it with -H, e.g. "
            "fab -H superlists@example.com deploy. (Without -H, Fabric would "
            "run the commands on this machine.)"
        )
    named = connect.user_named_in(_hosts_argument(sys.argv), c)
    return connect.open_connection(connect.adopt(c, names=connect.DEPLOY_NAMES, user_named=named))


def _hosts_argument(argv):
    """fab's -H/--hosts value: whether it named a user is lost once Fabric parsed it."""
    for index, arg in enumerate(argv):
        if arg in ("-H", "--hosts") and index + 1 < len(argv):
            return argv[index + 1]
        for prefix in ("--hosts=", "-H"):
            if arg.startswith(prefix) and len(arg) > len(prefix):
                return arg[len(prefix) :]
    return ""


def _site(
    conn,
    sitename="",
    workers=2,
    port=0,
    listen_address="",
    site_url="",
    tls_cert="",
    tls_key="",
    behind="",
    staging=False,
):
    """Check the options and find out what the host runs (systemd or not) and where home is."""
    try:
        workers, port = int(workers), int(port)
    except ValueError:
        raise DeployError("--workers and --port must be whole numbers.") from None
    if workers < 2:
        raise DeployError(f"--workers={workers}: the site runs with at least 2 gunicorn workers.")
    if tls_cert and not tls_key:
        raise DeployError("--tls-cert needs --tls-key too (the private key's path on the server).")
    if behind and tls_cert:
        raise DeployError(
            "--behind and --tls-cert: behind a load balancer, the balancer holds the "
            "certificate (fab provision-balancer --tls-cert ...); the app host serves http."
        )
    facts = remote.run(
        conn,
        "echo $HOME; id -un; test -d /run/systemd/system && echo systemd || echo supervisor",
    ).stdout.split()
    home, user, init = facts[0], facts[1], facts[2]
    if behind and not listen_address:
        # The balancer reaches the app host at the address fab reaches it at.
        listen_address = conn.host
    return Site(
        paths=SitePaths(sitename or conn.host, home),
        user=user,
        init=init,
        workers=workers,
        port=port or (443 if tls_cert else 80),
        listen_address=listen_address,
        site_url=site_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
        behind=behind,
        host=conn.host,
        staging=bool(staging),
    )


def _passed_through_settings(environ):
    """The mail and login settings for the server, from the local environment."""
    if not environ.get("EMAIL_HOST", "").strip():
        raise DeployError(
            "EMAIL_HOST is not set in your environment: the server needs an SMTP server to "
            "send login emails. Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, "
            "EMAIL_PASSWORD as your mail provider requires) before fab deploy."
        )
    if not environ.get("EMAIL_PASSWORD"):
        print(
            "Warning: EMAIL_PASSWORD is not set in your environment, so the server will try "
            "to send mail without logging in; most mail servers refuse that.",
            file=sys.stderr,
        )
    values = {name: environ[name] for name in PASSED_THROUGH if environ.get(name)}
    if environ.get(SERVER_SSL_CERT_FILE):
        values["SSL_CERT_FILE"] = environ[SERVER_SSL_CERT_FILE]
    return values


class _StepFailed(Exception):
    """A step of a task failed; carries the step's name and the original error."""

    def __init__(self, title, error):
        super().__init__(title)
        self.title, self.error = title, error


def _step(title, function, *args):
    """Run one step of a task, printing its name and how long it took."""
    started = time.monotonic()
    try:
        result = function(*args)
    except (DeployError, connect.ConnectError, ValueError, UnexpectedExit) as error:
        print(f"  {title}: FAILED after {time.monotonic() - started:.2f} s", flush=True)
        raise _StepFailed(title, error) from error
    print(f"  {title}: {time.monotonic() - started:.2f} s", flush=True)
    return result


def _tail(text, lines=25):
    """The end of a command's output, where a traceback says what went wrong."""
    return "\n".join("  " + line for line in text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def _friendly_errors(task_name):
    """Turn expected failures into a sentence naming the task and step, never a traceback."""
    where = f"fab {task_name} failed"
    try:
        yield
    except _StepFailed as failed:
        raise Exit(f"{where} at step '{failed.title}': {_say(failed.error)}", 1) from None
    except (DeployError, connect.ConnectError, ValueError, UnexpectedExit) as error:
        raise Exit(f"{where}: {_say(error)}", 1) from None


def _say(error):
    """An expected failure in words: a sentence, or the cause and the end of a command's output."""
    cause, detail = _cause_and_detail(error)
    return f"{cause}\n{detail}" if detail else cause


def _cause_and_detail(error):
    """For a failed command: the line that names the cause first, then the end of its output."""
    if not isinstance(error, UnexpectedExit):
        return str(error), ""
    result = error.result
    output = (result.stderr + result.stdout).strip()
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    exceptions = [line for line in lines if EXCEPTION_LINE.match(line)]
    cause = (exceptions or lines or ["no output"])[-1]
    command = remote.shown(result.command)[:300]
    return (
        f"a command failed on the server (exit status {result.exited}): {cause[:400]}",
        f"The end of its output:\n{_tail(output, 15)}\n  (the command: {command})",
    )


def _script(name):
    # Sent along rather than run from a release, which may be an older commit without it.
    return (HERE / name).read_text()


def _run_script(conn, site, name, script, *args):
    """Run one of deploy_tools' scripts in a release's folder with its venv's Python."""
    folder = site.paths.release(name)
    words = " ".join(shlex.quote(arg) for arg in args)
    return remote.run(
        conn,
        f"cd {q(folder)} && .venv/bin/python -c {shlex.quote(_script(script))} {words}",
    ).stdout
