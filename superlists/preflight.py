"""The server preflight: what a deployed site must get right before anyone tests or visits it."""

import http.client
import os
import ssl
import time
from collections import defaultdict
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http.request import validate_host

from superlists import identity
from superlists.env import is_yes, read_dotenv

# One file every page links to: if nginx serves it, it serves the collected static files.
STATIC_PROBE = "css/base.css"


def run_checks(host, through=None, proc=Path("/proc")):
    """The site's identity and its problems, each a sentence naming what to fix."""
    dotenv = read_dotenv(settings.DOTENV_FILE)
    started = time.perf_counter()
    not_loaded = _settings_not_loaded(dotenv)
    problems = [
        *not_loaded,
        *_debug_on(dotenv, loaded=not not_loaded),
        *_host_not_allowed(host),
        *_migrations_not_applied(),
    ]
    static_size, static_problems = _static_file(host, through)
    workers, worker_problems = _gunicorn_workers(proc)
    return {
        "sitename": settings.SITENAME,
        "site_id": identity.site_id(),
        "staging": bool(settings.STAGING) and is_yes(dotenv.get(identity.STAGING_FLAG)),
        "dotenv": str(identity.dotenv_path()),
        "dotenv_staging": is_yes(dotenv.get(identity.STAGING_FLAG)),
        "settings_staging": bool(settings.STAGING),
        "static_path": settings.STATIC_URL + STATIC_PROBE,
        "static_size": static_size,
        "workers": workers,
        "problems": [*problems, *static_problems, *worker_problems],
        "seconds": round(time.perf_counter() - started, 3),
    }


def _settings_not_loaded(dotenv):
    if not Path(settings.DOTENV_FILE).is_file():
        return [
            f"there is no .env at {identity.dotenv_path()}: this manage.py runs on development "
            f"defaults. `fab deploy` writes it."
        ]
    # DEBUG is left to _debug_on: code can turn it on whatever the .env says.
    seen = {
        identity.STAGING_FLAG: ("yes" if settings.STAGING else "no", is_yes),
        "SITENAME": (settings.SITENAME, str),
        "SITE_URL": (settings.SITE_URL, lambda url: url.rstrip("/")),
    }
    differences, overridden = [], []
    for name, (value, meaning) in seen.items():
        written = dotenv.get(name)
        if written is None or meaning(written) == meaning(value):
            continue
        if name in os.environ and os.environ[name] != written:
            overridden.append(f"{name}={os.environ[name]!r}")
        else:
            differences.append(f"{name}={written!r} but the settings have {value!r}")
    problems = []
    if differences:
        problems.append(
            f"the settings did not load this site's .env ({identity.dotenv_path()}): it sets "
            f"{'; '.join(differences)}. Something stops superlists/settings.py from reading "
            f"it (load_dotenv, BASE_DIR)."
        )
    if overridden:
        problems.append(
            f"this process's environment overrides the site's .env: {', '.join(overridden)}."
        )
    return problems


def _debug_on(dotenv, loaded):
    if not settings.DEBUG:
        return []
    if not is_yes(dotenv.get("DJANGO_DEBUG_FALSE")):
        return [
            "DEBUG is on: visitors would see debug pages with the settings in them. Set "
            "DJANGO_DEBUG_FALSE=1 in the site's .env (`fab deploy` writes it)."
        ]
    if not loaded:
        return ["DEBUG is on, because the .env that turns it off was not loaded (see above)."]
    return [
        "DEBUG is on although the .env sets DJANGO_DEBUG_FALSE: something in the settings "
        "turns it back on. Visitors would see debug pages with the settings in them."
    ]


def _host_not_allowed(host):
    if not host or validate_host(host, settings.ALLOWED_HOSTS):
        return []
    return [
        f"ALLOWED_HOSTS ({', '.join(settings.ALLOWED_HOSTS) or 'empty'}) does not cover "
        f"{host}, the address the browser uses: every page there is a 400. Add it to "
        f"DJANGO_ALLOWED_HOSTS in the site's .env (`fab deploy --listen-address` adds one)."
    ]


def _migrations_not_applied():
    try:
        executor = MigrationExecutor(connections["default"])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as error:
        return [f"the database could not be read ({type(error).__name__}: {error})."]
    if not plan:
        return []
    names = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return [
        f"{len(names)} migration(s) not applied to the database: {shown}. Run manage.py "
        f"migrate (`fab deploy` does)."
    ]


def _static_file(host, through):
    """The collected probe file's size, and what is wrong with it or with nginx serving it."""
    collected = Path(settings.STATIC_ROOT) / STATIC_PROBE
    if not collected.is_file():
        return None, [
            f"{collected} is missing: collectstatic has not run into STATIC_ROOT "
            f"({settings.STATIC_ROOT}), so nginx has no static files to serve."
        ]
    size = collected.stat().st_size
    if not through:
        return size, []
    path = settings.STATIC_URL + STATIC_PROBE
    try:
        status, served = _fetch(through, host, path)
    except OSError as error:
        return size, [f"nginx at {through} did not answer for {path}: {error}."]
    if status != 200 or served != size:
        return size, [
            f"nginx at {through} answered {path} with HTTP {status} and {served} bytes; "
            f"{collected} has {size}: check the site's nginx `location /static/` alias."
        ]
    return size, []


def _fetch(base, host, path):
    """(status, body length) of GET path from base (http(s)://address:port) with Host: host."""
    scheme, _, address = base.partition("://")
    address, _, port = address.rstrip("/").rpartition(":")
    if scheme == "https":
        # The server asking itself over loopback: the certificate names the public host.
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        connection = http.client.HTTPSConnection(address, int(port), timeout=5, context=context)
    else:
        connection = http.client.HTTPConnection(address, int(port), timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, len(response.read())
    finally:
        connection.close()


def _gunicorn_workers(proc):
    """How many gunicorn workers serve this release, and a problem if none do."""
    if not proc.is_dir():
        return None, []  # not Linux: nothing to look at
    release = Path(settings.BASE_DIR).resolve()
    serving, parents = set(), {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone, or not ours to read
        pid = int(entry.name)
        parents[pid] = int(stat.rpartition(")")[2].split()[1])
        if any(Path(word).name == "gunicorn" for word in argv[:2]) and "--chdir" in argv:
            folder = argv[argv.index("--chdir") + 1 :][:1]
            if folder and Path(folder[0]).resolve() == release:
                serving.add(pid)
    children = defaultdict(int)
    for pid in serving:
        children[parents[pid]] += 1
    masters = [pid for pid in serving if parents[pid] not in serving]
    if not masters:
        return 0, [
            f"no gunicorn is running for this release ({release}): start it (`fab deploy` "
            f"does) and read the site's logs/gunicorn.log for why it stopped."
        ]
    workers = sum(children[pid] for pid in masters)
    if not workers:
        return 0, [
            f"gunicorn (pid {masters[0]}) runs no workers: they fail to boot; the reason is "
            f"in the site's logs/gunicorn.log."
        ]
    return workers, []


def format_report(report):
    """The report on one screen: which site, then each problem or that there are none."""
    kind = "staging" if report["staging"] else "not staging"
    lines = [f"Preflight of {report['sitename']} ({kind}, site id {report['site_id']}):"]
    lines.extend(f"  - {problem}" for problem in report["problems"])
    if not report["problems"]:
        workers = report["workers"]
        lines.append(
            "  ok: DEBUG off, host allowed, migrations applied, static files collected"
            + (f", {workers} gunicorn workers" if workers else "")
        )
    return "\n".join(lines)
