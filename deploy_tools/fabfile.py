"""Provision and deploy Superlists with Fabric 3: `fab -H user@host deploy` from the repo root."""

import contextlib
import hashlib
import io
import os
import re
import secrets
import shlex
import subprocess
import sys
import tarfile
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

from deploy_tools import connect  # noqa: E402
from deploy_tools.sitepaths import (  # noqa: E402
    HOST_SITES_DIR,
    NGINX_ERROR_LOG,
    NGINX_PID,
    NGINX_PROGRAM,
    NGINX_USER,
    SUPERVISOR_SOCKET,
    SitePaths,
    host_include,
)
from superlists.env import format_dotenv, parse_dotenv  # noqa: E402

TEMPLATES = Path(__file__).resolve().parent / "templates"
KEEP_RELEASES = 3
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
# The server's own CA bundle (e.g. one that trusts a staging mail server's certificate).
SERVER_SSL_CERT_FILE = "SERVER_SSL_CERT_FILE"
SUPERVISORCTL = f"supervisorctl -s unix://{SUPERVISOR_SOCKET}"
# nginx answers a HUP within milliseconds: new workers, or an [emerg] in its error log.
NGINX_RELOAD_TIMEOUT = 5


class DeployError(Exception):
    """A deploy cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Site:
    """Everything a task needs to know about the site it works on."""

    paths: SitePaths
    user: str
    init: str  # "systemd" or "supervisor"
    workers: int = 2
    port: int = 80
    listen_address: str = ""
    site_url: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    staging: bool = False

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


@dataclass(frozen=True)
class Release:
    """The code to ship: a tar archive and the name of its folder on the server."""

    name: str
    archive: bytes
    requirements_hash: str


# --- tasks ------------------------------------------------------------------------------

SITE_HELP = {
    "sitename": "the site's folder under ~/sites/ and nginx server name (default: the host)",
    "workers": "gunicorn worker processes (default 2)",
    "port": "the port nginx listens on for this site (default 80, or 443 with --tls-cert)",
    "listen-address": "the address nginx listens on for this site (default: all)",
    "site-url": "the site's absolute URL for login emails (default: http://SITENAME[:PORT])",
    "tls-cert": "path of the TLS certificate on the server (turns on https)",
    "tls-key": "path of the TLS private key on the server",
}


@task(help=SITE_HELP, auto_shortflags=False)
def provision(
    c,
    sitename="",
    workers=2,
    port=0,
    listen_address="",
    site_url="",
    tls_cert="",
    tls_key="",
):
    """Prepare a server for a site: folders, the gunicorn service and the nginx site."""
    with _friendly_errors("provision"):
        conn = _connect(c)
        site = _site(conn, sitename, workers, port, listen_address, site_url, tls_cert, tls_key)
        _step("check the host", _check_host, conn, site)
        _step("make the site's folders", _make_folders, conn, site)
        _step("install the gunicorn service and nginx site", _update_services, conn, site)
        print(f"Provisioned {site.paths.root} ({site.init}); next: fab deploy.")


@task(
    auto_shortflags=False,
    help={
        **SITE_HELP,
        "staging": "mark the server as staging (allows the FT-only management commands)",
        "worktree": "ship the working tree (tracked and untracked files) instead of HEAD",
        "rotate-secret-key": "a new DJANGO_SECRET_KEY; the old one stays as the one fallback",
    },
)
def deploy(
    c,
    sitename="",
    staging=False,
    workers=2,
    port=0,
    listen_address="",
    site_url="",
    tls_cert="",
    tls_key="",
    worktree=False,
    rotate_secret_key=False,
):
    """Put the local commit live on the server, skipping whatever has not changed."""
    started = time.monotonic()
    with _friendly_errors("deploy"):
        conn = _connect(c)
        passed = _passed_through_settings(os.environ)
        release = _build_release(worktree)
        site = _site(
            conn, sitename, workers, port, listen_address, site_url, tls_cert, tls_key, staging
        )
        _step("make the site's folders", _make_folders, conn, site)
        code_changed = _step("upload the source", _upload_source, conn, site, release)
        venv_changed = _step("update the virtualenv", _update_virtualenv, conn, site, release)
        env_changed = _step("update .env", _update_dotenv, conn, site, passed, rotate_secret_key)
        _step("collect static files", _collect_static, conn, site)
        _step("migrate the database", _migrate, conn, site)
        _step("update the gunicorn service and nginx site", _update_services, conn, site)
        _step(
            "restart gunicorn",
            _restart_gunicorn,
            conn,
            site,
            code_changed or venv_changed or env_changed,
        )
        _step("check the site answers through nginx", _check_live, conn, site)
        _step(
            "preflight: settings, host, migrations, static files, workers", _preflight, conn, site
        )
        _step("remove old releases", _prune_releases, conn, site)
        staging_note = " (staging)" if staging else ""
        print(
            f"Deployed {release.name} to {site.url}{staging_note} "
            f"in {time.monotonic() - started:.1f} s."
        )


@task(
    auto_shortflags=False,
    help={"sitename": SITE_HELP["sitename"], "lines": "how many lines of each log (default 50)"},
)
def logs(c, sitename="", lines=50):
    """Show the end of the site's logs (application, errors, gunicorn, nginx)."""
    with _friendly_errors("logs"):
        conn = _connect(c)
        paths = SitePaths.for_connection(conn, sitename or conn.host)
        conn.run(
            f"cd {_q(paths.logs)} && tail -n {int(lines)} -- *.log",
            warn=True,
            in_stream=False,
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


# --- steps (each safe to run twice) ------------------------------------------------------


def _check_host(conn, site):
    """Refuse, with what to do, when the host lacks what the chosen service manager needs."""
    if site.init == "systemd":
        if not _ok(conn, "sudo -n true"):
            raise DeployError(
                f"{conn.user} needs passwordless sudo on {conn.host} to install the systemd "
                f"unit and nginx site (see deploy_tools/provisioning_notes.md)."
            )
        return
    folder = HOST_SITES_DIR / site.user
    if not _ok(conn, f"test -d {_q(folder)} && test -w {_q(folder)} && test -O {_q(folder)}"):
        raise DeployError(
            f"This host has no systemd, and {folder} (where root's nginx and supervisord "
            f"look for {site.user}'s sites) is missing or not {site.user}'s. As root: "
            f"install -d -o {site.user} -m 755 {folder} (see deploy_tools/provisioning_notes.md)."
        )
    if not _ok(conn, f"id -nG {NGINX_USER} | grep -qw {_q(site.user)}"):
        raise DeployError(
            f"nginx's workers ({NGINX_USER}) are not in {site.user}'s group on this host, so "
            f"they cannot reach the gunicorn socket (srwxrwx---). As root: usermod -aG "
            f"{site.user} {NGINX_USER}, then restart nginx."
        )
    if not _ok(conn, f"{SUPERVISORCTL} status {NGINX_PROGRAM}"):
        raise DeployError(
            f"{conn.host} has no systemd, and {conn.user} cannot reach the Superlists "
            f"supervisord at {SUPERVISOR_SOCKET} (or it does not run nginx). As root, start "
            f"supervisord with deploy_tools/templates/supervisord-host.conf as "
            f"deploy_tools/provisioning_notes.md explains (the staging rehearsal does it with "
            f"deploy_tools/staging_host.py up)."
        )


def _make_folders(conn, site):
    """Create the site's folders; nginx's workers must be able to traverse the home folder."""
    p = site.paths
    logs = [p.logs / name for name in ("nginx-access.log", "nginx-error.log")]
    conn.run(
        f"chmod o+x {_q(p.home)} && mkdir -p {_q(p.releases)} {_q(p.static)} {_q(p.logs)} && "
        f"chmod 755 {_q(p.sites)} {_q(p.root)} {_q(p.static)} && "
        # nginx (root) appends to these; creating them here keeps them ours. Logs (and the
        # addresses in them) are for the site's user only; supervisord's own file is root's.
        f"touch {' '.join(_q(log) for log in logs)} && chmod 700 {_q(p.logs)} && "
        f'find {_q(p.logs)} -type f -user "$(id -u)" -exec chmod go-rwx {{}} +',
        hide=True,
        in_stream=False,
    )


def _upload_source(conn, site, release):
    """Ship the release's archive unless the server has it, and make it the live source."""
    p = site.paths
    folder = p.releases / release.name
    if not _ok(conn, f"test -f {_q(folder / '.complete')}"):
        unpacking = p.releases / f".{release.name}.partial"
        _pipe(
            conn,
            f"rm -rf {_q(unpacking)} && mkdir -p {_q(unpacking)} && tar -x -C {_q(unpacking)} && "
            f"touch {_q(unpacking / '.complete')} && rm -rf {_q(folder)} && "
            f"mv {_q(unpacking)} {_q(folder)}",
            release.archive,
        )
    # The app reads BASE_DIR/.env with BASE_DIR resolved through the source symlink, so the
    # link inside the release must be absolute.
    target = f"releases/{release.name}"
    switched = conn.run(
        f"ln -sfn {_q(p.env)} {_q(folder / '.env')} && cd {_q(p.root)} && "
        f'if [ "$(readlink source)" != {_q(target)} ]; then '
        f"ln -sfn {_q(target)} source.new && mv -T source.new source && echo switched; fi",
        hide=True,
        in_stream=False,
    ).stdout
    return "switched" in switched


def _update_virtualenv(conn, site, release):
    """Build the venv from /usr/bin/python3 once; run pip only when requirements changed."""
    p = site.paths
    stamp = conn.run(
        f"test -x {_q(p.python)} || /usr/bin/python3 -m venv {_q(p.venv)} >/dev/null; "
        f"cat {_q(p.requirements_stamp)} 2>/dev/null || true",
        hide=True,
        in_stream=False,
    ).stdout.strip()
    if stamp == release.requirements_hash:
        return False
    conn.run(
        f"{_q(p.venv / 'bin' / 'pip')} install --quiet --disable-pip-version-check "
        f"-r {_q(p.source / 'requirements.txt')} && "
        f"echo {release.requirements_hash} > {_q(p.requirements_stamp)}",
        hide=True,
        in_stream=False,
    )
    return True


def _update_dotenv(conn, site, passed_through, rotate_secret_key=False):
    """Write the site's .env (secret key kept), only when its content would change."""
    p = site.paths
    current = conn.run(f"cat {_q(p.env)} 2>/dev/null || true", hide=True, in_stream=False).stdout
    values = dotenv_values_for(site, parse_dotenv(current), passed_through, rotate_secret_key)
    text = format_dotenv(values, header=ENV_HEADER)
    if text == current:
        return False
    _write_file(conn, p.env, text, mode="600")
    return True


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
        "STATIC_ROOT": str(p.static),
        "LOG_DIR": str(p.logs),
        # Kept when set on the server, e.g. to a postgres:// URL.
        "DATABASE_URL": existing.get("DATABASE_URL") or f"sqlite:///{p.database}",
    }
    if rotate_secret_key and existing.get("DJANGO_SECRET_KEY"):
        # The retired key stays as the only fallback, so sessions signed with it live on
        # until the next rotation; the key retired before that is dropped.
        values["DJANGO_SECRET_KEY_FALLBACKS"] = existing["DJANGO_SECRET_KEY"]
        values["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    if site.tls_cert:
        values["DJANGO_SECURE_HTTPS"] = "1"
    values.update(passed_through)
    # Only an explicit --staging makes a server accept the FT-only commands.
    if site.staging:
        values["SUPERLISTS_STAGING"] = "1"
    managed = {*values, *PASSED_THROUGH, "SSL_CERT_FILE", "DJANGO_SECURE_HTTPS"}
    managed.add("SUPERLISTS_STAGING")
    values.update({key: value for key, value in existing.items() if key not in managed})
    return values


def _collect_static(conn, site):
    """Collect static files into the site's static/ folder that nginx serves."""
    conn.run(site.paths.manage("collectstatic", "--noinput", "-v", "0"), hide=True, in_stream=False)


def _migrate(conn, site):
    """Apply the database migrations."""
    conn.run(site.paths.manage("migrate", "--noinput", "-v", "0"), hide=True, in_stream=False)


def _update_services(conn, site):
    """Render the gunicorn service and nginx site; apply only what changed."""
    p = site.paths
    nginx = render_nginx_site(site)
    service_path = p.systemd_unit if site.init == "systemd" else p.supervisor_conf
    service = render_service(site)
    previous_nginx = _read_remote(conn, p.nginx_conf)
    nginx_changed = _write_if_changed(conn, p.nginx_conf, nginx, current=previous_nginx)
    service_changed = _write_if_changed(conn, service_path, service)
    live = _ok(conn, f"test -e {_q(p.source / 'manage.py')}")
    if site.init == "systemd":
        unit = f"/etc/systemd/system/{p.service}.service"
        # The gunicorn socket is srwxrwx---: nginx's workers reach it as members of our group.
        conn.run(
            f"id -nG {NGINX_USER} | grep -qw {_q(site.user)} || "
            f"{{ sudo -n usermod -aG {_q(site.user)} {NGINX_USER} && "
            f"sudo -n systemctl reload nginx; }}",
            hide=True,
            in_stream=False,
        )
        conn.run(
            f"sudo -n ln -sfn {_q(p.nginx_conf)} /etc/nginx/sites-enabled/{_q(p.sitename)} && "
            f"sudo -n cp {_q(service_path)} {unit} && sudo -n systemctl daemon-reload && "
            f"sudo -n systemctl enable {p.service}",
            hide=True,
            in_stream=False,
        )
        if live and (service_changed or not _ok(conn, f"systemctl is-active {p.service}")):
            conn.run(f"sudo -n systemctl restart {p.service}", hide=True, in_stream=False)
        if nginx_changed:
            _reload_nginx(conn, site, previous_nginx)
        return nginx_changed or service_changed
    # Root's supervisord and nginx include the site's files through links in our folder.
    conn.run(
        f"ln -sfn {_q(p.nginx_conf)} {_q(host_include(site.user, p.sitename, 'nginx'))} && "
        f"ln -sfn {_q(service_path)} {_q(host_include(site.user, p.sitename, 'supervisor'))}",
        hide=True,
        in_stream=False,
    )
    # supervisord reads our program file through its [include]; `update` adds the program,
    # restarts it if its file changed and is a no-op otherwise. Before the first deploy
    # there is nothing to start.
    if live:
        conn.run(f"{SUPERVISORCTL} update {p.service}", hide=True, in_stream=False)
    if nginx_changed:
        _reload_nginx(conn, site, previous_nginx)
    return nginx_changed or service_changed


def _reload_nginx(conn, site, previous):
    """Make nginx load the site's new configuration; if it refuses, put the previous one back."""
    # nginx includes every site's file: a refused one left in place would make every later
    # reload on the host fail, for every site.
    if site.init == "systemd":
        result = conn.run(
            "sudo -n nginx -t -q 2>&1 && sudo -n systemctl reload nginx",
            hide=True,
            warn=True,
            in_stream=False,
        )
        said = "; ".join(line for line in result.stdout.splitlines() if line.strip())
        refusal = "" if result.ok else said or f"exit status {result.exited}"
    else:
        refusal = _hup_supervised_nginx(conn)
    if not refusal:
        return
    path = site.paths.nginx_conf
    if previous:
        _write_file(conn, path, previous)
        undone = "The previous one is back in place, and nginx still serves it"
    else:
        conn.run(f"rm -f {_q(path)}", hide=True, in_stream=False)
        # A dangling link in the folder nginx includes would fail its next reload too.
        if site.init == "systemd":
            link = f"/etc/nginx/sites-enabled/{site.paths.sitename}"
            conn.run(f"sudo -n rm -f {_q(link)}", hide=True, in_stream=False)
        else:
            link = host_include(site.user, site.paths.sitename, "nginx")
            conn.run(f"rm -f {_q(link)}", hide=True, in_stream=False)
        undone = "It was removed, and nginx runs on as before"
    raise DeployError(
        f"nginx refused the site's new configuration ({refusal}). {undone}: check the "
        f"--tls-cert/--tls-key paths and the other options, then try again."
    )


def _hup_supervised_nginx(conn):
    """HUP the host's nginx; return the error it logged if it refused its configuration."""
    # A refused configuration leaves nginx running the old one, so nothing else would tell.
    # The deploy user cannot run `nginx -t` here (it needs root for the pid file and port 80),
    # so wait for the master's answer: new workers (accepted) or an [emerg] logged (refused).
    log, pid = _q(NGINX_ERROR_LOG), _q(NGINX_PID)
    workers = f'pgrep -P "$(cat {pid})" | sort'
    result = conn.run(
        f"before=$(stat -c %s {log} 2>/dev/null || echo 0); old=$({workers}); "
        f"{SUPERVISORCTL} signal HUP {NGINX_PROGRAM} >/dev/null && "
        f"for _ in $(seq {NGINX_RELOAD_TIMEOUT * 20}); do "
        f'refused=$(tail -c +$((before + 1)) {log} 2>/dev/null | grep -m1 -o "\\[emerg\\].*"); '
        f'[ -n "$refused" ] && {{ echo "$refused"; break; }}; '
        f'new=$({workers}); [ -n "$new" ] && [ "$new" != "$old" ] && break; '
        f"sleep 0.05; done",
        hide=True,
        in_stream=False,
    )
    return result.stdout.strip()


def _check_live(conn, site):
    """Ask nginx for the home page from the server itself: a deploy that serves errors failed."""
    p = site.paths
    scheme = "https" if site.tls_cert else "http"
    address = site.listen_address or "127.0.0.1"
    # Sent along rather than run from the release, which may be an older commit without it.
    script = (Path(__file__).parent / "smoke_check.py").read_text()
    result = conn.run(
        f"{_q(p.python)} -c {shlex.quote(script)} "
        f"{scheme} {_q(address)} {site.port} {_q(p.sitename)}",
        hide=True,
        warn=True,
        in_stream=False,
    )
    answer = (result.stdout.strip() or result.stderr.strip() or "nothing").splitlines()[-1]
    if not result.ok:
        raise DeployError(
            f"The release is live, but {scheme}://{address}:{site.port}/ (Host: {p.sitename}) "
            f"answered {answer}. The same fab command with `logs` instead of `deploy` shows "
            f"the gunicorn and nginx logs."
        )
    return answer


def _preflight(conn, site):
    """The staging FTs' preflight, run by the live release: each problem named, or none."""
    scheme = "https" if site.tls_cert else "http"
    nginx = f"{scheme}://{site.listen_address or '127.0.0.1'}:{site.port}"
    host = urlsplit(site.url).hostname
    result = conn.run(
        site.paths.manage("preflight", "--host", host, "--through", nginx),
        hide=True,
        warn=True,
        in_stream=False,
    )
    if not result.ok:
        said = (result.stdout.strip() + "\n" + result.stderr.strip()).strip()
        raise DeployError(f"The release is live, but its preflight failed:\n{said}")
    return result.stdout


def _restart_gunicorn(conn, site, changed):
    """Start gunicorn if it is down; after a change, reload it gracefully and wait for it."""
    p = site.paths
    if site.init == "systemd":
        pid_command = f"systemctl show -p MainPID --value {p.service}"
        start = f"sudo -n systemctl start {p.service}"
    else:
        pid_command = f"{SUPERVISORCTL} pid {p.service}"
        start = f"{SUPERVISORCTL} start {p.service}"
    # HUP makes gunicorn start new workers on the new code and retire the old ones; waiting
    # for the old ones to go means the next request is served by the new release.
    conn.run(
        f'pid=$({pid_command} 2>/dev/null); case "$pid" in ""|0|*[!0-9]*) pid=;; esac; '
        f'if [ -z "$pid" ]; then {start} >/dev/null; '
        f"elif [ {int(bool(changed))} = 1 ]; then "
        f'old=$(pgrep -P "$pid"); kill -HUP "$pid"; '
        f"for _ in $(seq 150); do alive=; for w in $old; do "
        f'[ -d /proc/$w ] && [ "$(cut -d" " -f3 /proc/$w/stat)" != Z ] && alive=1; done; '
        f'[ -z "$alive" ] && break; sleep 0.1; done; fi',
        hide=True,
        in_stream=False,
    )


def _prune_releases(conn, site):
    """Keep the newest few releases (the live one always) so a rollback stays possible."""
    p = site.paths
    conn.run(
        f'cd {_q(p.releases)} && live=$(basename "$(readlink ../source)") && '
        f"ls -1t | tail -n +{KEEP_RELEASES + 1} | while read -r old; do "
        f'[ "$old" = "$live" ] || rm -rf -- "$old"; done',
        hide=True,
        in_stream=False,
    )


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
    template = "gunicorn.service" if site.init == "systemd" else "gunicorn-supervisor.conf"
    return render(
        template,
        sitename=p.sitename,
        service=p.service,
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
    return render(
        "nginx-site.conf",
        sitename=p.sitename,
        listen=listen,
        server_name=p.sitename,
        tls_lines=tls_lines,
        redirect_block=redirect_block,
        logs=p.logs,
        static=p.static,
        socket=p.socket,
        log_format=f"superlists_{re.sub(r'[^A-Za-z0-9_]', '_', p.sitename)}",
        known_hosts="|".join(re.escape(host) for host in site.allowed_hosts.split(",")),
    )


# --- the release to ship -------------------------------------------------------------------


def _git(*args):
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, check=False)


def _build_release(worktree=False):
    """Archive HEAD (or, with worktree, the working tree) and name its server folder."""
    if worktree:
        archive = worktree_archive()
        name = "wt-" + hashlib.sha256(archive).hexdigest()[:12]
    else:
        head = _git("rev-parse", "--verify", "-q", "HEAD^{commit}")
        if head.returncode:
            raise DeployError(
                "This repository has no commit to deploy yet: commit first, or ship the "
                "working tree with --worktree."
            )
        name = head.stdout.decode().strip()[:12]
        if _git("status", "--porcelain", "--untracked-files=no").stdout.strip():
            print(f"Note: deploying commit {name}; uncommitted changes are not included.")
        archive = _git("archive", "--format=tar", "HEAD").stdout
    requirements = _member(archive, "requirements.txt")
    if requirements is None:
        raise DeployError("The code to deploy has no requirements.txt at its top level.")
    return Release(name, archive, hashlib.sha256(requirements).hexdigest())


# Never shipped from a working tree: local state, secrets and generated files.
_WORKTREE_SKIP = {".venv", "venv", "__pycache__", ".git", ".env", "db.sqlite3", "node_modules"}
_WORKTREE_SKIP_TOP = {"static", "logs", "media"}


def worktree_archive():
    """A reproducible tar of the tracked and untracked, not ignored, working-tree files."""
    listed = _git("ls-files", "-z", "-c", "-o", "--exclude-standard", "--", ".", ":!:.venv")
    if listed.returncode:
        raise DeployError(f"git could not list the working tree: {listed.stderr.decode().strip()}")
    names = sorted({n for n in listed.stdout.decode().split("\0") if n})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            parts = PurePosixPath(name).parts
            if _WORKTREE_SKIP & set(parts) or parts[0] in _WORKTREE_SKIP_TOP:
                continue
            if name.endswith((".pyc", ".sqlite3-wal", ".sqlite3-shm")):
                continue
            path = REPO / name
            if not path.exists():
                continue
            info = tar.gettarinfo(str(path), arcname=name)
            # Same files, same archive: the release name is a hash of it. Real mtimes stay,
            # because collectstatic only copies files newer than what it collected before.
            info.uid, info.gid, info.uname, info.gname = 0, 0, "", ""
            if info.isfile():
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def _member(archive, name):
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        try:
            handle = tar.extractfile(name)
        except KeyError:
            return None
        return handle.read() if handle else None


# --- plumbing ------------------------------------------------------------------------------


def _connect(c):
    """The task's connection with the host key verified, or a refusal when there is no host."""
    if not isinstance(c, Connection):
        raise DeployError(
            "This task works on a server: name it with -H, e.g. "
            "fab -H superlists@example.com deploy. (Without -H, Fabric would "
            "run the commands on this machine.)"
        )
    return connect.open_connection(connect.adopt(c))


def _site(
    conn,
    sitename,
    workers,
    port,
    listen_address,
    site_url,
    tls_cert,
    tls_key,
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
    facts = conn.run(
        "echo $HOME; id -un; test -d /run/systemd/system && echo systemd || echo supervisor",
        hide=True,
        in_stream=False,
    ).stdout.split()
    home, user, init = facts[0], facts[1], facts[2]
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
    print(f"  {title}: {time.monotonic() - started:.2f} s")
    return result


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
    """An expected failure in words: a sentence, or what the server's command printed."""
    if not isinstance(error, UnexpectedExit):
        return str(error)
    result = error.result
    detail = (result.stderr or result.stdout or "").strip()[-2000:]
    return (
        f"this command failed on the server (exit status {result.exited}):\n"
        f"  {result.command}\n{detail}"
    )


def _q(path):
    return shlex.quote(str(path))


def _ok(conn, command):
    return conn.run(command, hide=True, warn=True, in_stream=False).ok


def _write_file(conn, path, text, mode="644"):
    """Replace a remote file atomically with text, sent on stdin."""
    # Never on the command line: every local user sees it in `ps`, and a failed command is
    # printed whole. The .env holds the secret key and the mail password.
    _pipe(
        conn,
        f"umask 077 && cat > {_q(path)}.new && chmod {mode} {_q(path)}.new && "
        f"mv {_q(path)}.new {_q(path)}",
        text.encode(),
        what=f"Writing {path}",
    )


def _read_remote(conn, path):
    """A remote file's text, or "" if it does not exist."""
    return conn.run(f"cat {_q(path)} 2>/dev/null || true", hide=True, in_stream=False).stdout


def _write_if_changed(conn, path, text, mode="644", current=None):
    if current is None:
        current = _read_remote(conn, path)
    if current == text:
        return False
    _write_file(conn, path, text, mode)
    return True


def _pipe(conn, command, data, what="Unpacking the source"):
    """Run command on the server with data on its stdin (invoke's stdin pump is bytewise)."""
    channel = conn.create_session()
    try:
        channel.exec_command(command)
        channel.sendall(data)
        channel.shutdown_write()
        errors = channel.makefile_stderr("rb").read().decode(errors="replace")
        status = channel.recv_exit_status()
    finally:
        channel.close()
    if status:
        raise DeployError(f"{what} on the server failed ({status}): {errors.strip()}")
