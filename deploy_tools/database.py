"""A site's PostgreSQL on a host of its own, from Debian's packages, and its URL on the app hosts.

Every function takes a connection-like object: anything with `.run(command, hide=..., warn=...,
in_stream=...)` — a Fabric Connection to the host, or an invoke.Context on this machine (as
reliability/check_database_host.py does). On the database host they need root, or a user who may
run `sudo -n` without a password; anyone else is refused with a sentence saying so.

Loopback: a connection over loopback arrives from 127.0.0.1 whatever address it was sent to, so
a rehearsal on one machine must allow the client 127.0.0.1, and cannot show that another host's
address is refused. What it still shows: the site's role with its password gets in; a wrong
password, another role or another database is refused.
"""

import base64
import dataclasses
import hashlib
import hmac
import io
import ipaddress
import re
import secrets
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

from fabric import Connection

from deploy_tools import connect
from deploy_tools.errors import DeployError
from deploy_tools.remote import q
from deploy_tools.sitepaths import SitePaths, check_sitename
from superlists.env import format_dotenv, parse_dotenv

CLUSTER = "superlists"
PORT = 5432
# Root-only, one file per cluster and role: a second run finds the password, so changes nothing.
PASSWORDS = PurePosixPath("/etc/superlists/postgresql")
# A socket folder of the cluster's own, so it never meets Debian's `main` on the same port;
# pg_ctlcluster makes a folder below this one again after a reboot empties /run.
SOCKETS = PurePosixPath("/var/run/postgresql")
INSTALL = (
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 "
    "--no-install-recommends postgresql"
)
MAX_IDENTIFIER = 63  # PostgreSQL cuts longer names (NAMEDATALEN - 1)
# Names that already mean something to PostgreSQL or to pg_hba.conf (and pg_* roles are reserved).
RESERVED = {"all", "none", "postgres", "public", "replication", "samegroup", "samerole"}
RESERVED |= {"sameuser", "template0", "template1"}
HBA_HEADER = (
    "# Written by fab provision-database (deploy_tools/database.py), which rewrites it: each\n"
    "# site's role may reach its own database from its app hosts' addresses with its password,\n"
    "# nothing else from the network; over the socket, the postgres user only.\n"
)
HBA_LOCAL = "local all postgres peer"
HBA_REJECT = ("host all all 0.0.0.0/0 reject", "host all all ::/0 reject")
ENV_HEADER = (
    "Written by fab provision-database: the site's DATABASE_URL. fab deploy keeps it and\n"
    "adds the rest."
)
POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}


# --- pure parts ---------------------------------------------------------------------------


def identifier_for(sitename):
    """The site's role and database name: lower-case letters, digits and _, 63 at most."""
    name = re.sub(r"[^a-z0-9_]", "_", check_sitename(sitename).lower())
    if not name[0].isalpha() or name.startswith("pg_") or name in RESERVED:
        name = f"site_{name}"
    if len(name) > MAX_IDENTIFIER:
        # Cut names stay apart by a digest of the whole site name.
        digest = hashlib.sha256(sitename.encode()).hexdigest()[:8]
        name = f"{name[: MAX_IDENTIFIER - 9]}_{digest}"
    return name


def address(value, option):
    """An IP address given to an option, normalised; a sentence if it is not one."""
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise DeployError(
            f"{option} takes IP addresses, e.g. 10.0.0.4, and {value!r} is not one."
        ) from None


def hba_lines(name, clients):
    """pg_hba.conf lines letting the role `name` reach its database from each client only."""
    networks = (ipaddress.ip_network(client) for client in clients)  # one address: /32 or /128
    return [f"host {name} {name} {network} scram-sha-256" for network in networks]


def hba_conf(current, name, clients):
    """The cluster's pg_hba.conf with the site's lines; other sites' lines kept from our file."""
    kept = []
    # The file initdb wrote lets every role reach every database from 127.0.0.1: none of it stays.
    if current.startswith(HBA_HEADER):
        for line in current.splitlines():
            words = line.split()
            ours = len(words) == 5 and words[0] == "host" and words[4] == "scram-sha-256"
            if ours and words[1] != name:
                kept.append(line)
    lines = [HBA_LOCAL, *kept, *hba_lines(name, clients), *HBA_REJECT]
    return HBA_HEADER + "\n".join(lines) + "\n"


def database_url(name, password, host, port):
    """The site's DATABASE_URL, as superlists/settings.py reads it (dj-database-url)."""
    if ":" in host:
        host = f"[{host}]"
    role = quote(name, safe="")
    return f"postgres://{role}:{quote(password, safe='')}@{host}:{port}/{role}"


def shown(url):
    """A database URL fit to print: its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, place = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user.partition(':')[0]}:***@{place}").geturl()


def same_database(url, other):
    """Whether two URLs name the same PostgreSQL database and role (the password aside)."""

    def where(link):
        parts = urlsplit(link)
        postgres = parts.scheme in POSTGRES_SCHEMES
        return postgres, parts.hostname, parts.port or PORT, parts.path, parts.username

    return where(url)[0] and where(url) == where(other)


def scram_verifier(password, salt=None, iterations=4096):
    """What PostgreSQL stores for a SCRAM-SHA-256 password: the password never goes to SQL."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    encoded = [base64.b64encode(part).decode() for part in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${iterations}:{encoded[0]}${encoded[1]}:{encoded[2]}"


def scram_matches(verifier, password):
    """Whether a stored SCRAM-SHA-256 verifier is the one for password."""
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$[^:]+:.+", verifier or "")
    if not match:
        return False
    again = scram_verifier(password, base64.b64decode(match[2]), int(match[1]))
    return hmac.compare_digest(again, verifier)


def merged_dotenv(text, url):
    """The .env text with DATABASE_URL set: every other key and the header comment kept."""
    values = parse_dotenv(text)
    values["DATABASE_URL"] = url
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line[2:] if line.startswith("# ") else line[1:])
    return format_dotenv(values, header="\n".join(header) or ENV_HEADER)


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster as pg_lsclusters lists it."""

    version: str
    name: str
    port: int
    running: bool
    socket: str = ""  # its unix_socket_directories, read once it is known to exist

    @property
    def label(self):
        return f"{self.version}/{self.name}"

    def ctl(self, action):
        return f"pg_ctlcluster {self.version} {self.name} {action}"


def find_cluster(listing, name):
    """The cluster called name in `pg_lsclusters --no-header` output, or None."""
    for line in listing.splitlines():
        words = line.split()
        if len(words) >= 4 and words[1] == name:
            return Cluster(words[0], name, int(words[2]), words[3].startswith("online"))
    return None


# --- on the database host -------------------------------------------------------------------


@dataclass(frozen=True)
class Host:
    """A host we run shell commands on, as root through `sudo -n` when sudo is set."""

    conn: object
    sudo: bool = False

    @classmethod
    def as_root(cls, conn):
        """The database host as root; a sentence when we are not root and may not sudo."""
        who = conn.run(
            'if [ "$(id -u)" = 0 ]; then echo root; elif sudo -n true 2>/dev/null; '
            "then echo sudo; else id -un; fi",
            hide=True,
            in_stream=False,
        ).stdout.strip()
        if who not in ("root", "sudo"):
            raise DeployError(
                f"Provisioning PostgreSQL needs root on the database host, and {who} is not "
                f"root and may not run sudo without a password (sudo -n). Connect as root "
                f"(fab -H root@HOST provision-database ...) or give {who} passwordless sudo."
            )
        return cls(conn, sudo=who == "sudo")

    def run(self, command, stdin=None, warn=False):
        """Run a shell command, with stdin (a secret never goes on a command line) if given."""
        if self.sudo:
            command = f"sudo -n sh -c {q(command)}"
        given = io.StringIO(stdin) if stdin is not None else False
        return self.conn.run(command, hide=True, warn=warn, in_stream=given)

    def read(self, path):
        """A file's text, or "" when it does not exist."""
        return self.run(f"cat {q(path)} 2>/dev/null || true").stdout

    def write(self, path, text, mode="600", owner=""):
        """Replace a file atomically with text (sent on stdin), making its folder if needed."""
        chown = f"chown {owner} {q(path)}.new && " if owner else ""
        self.run(
            f"mkdir -p {q(path.parent)} && umask 077 && cat > {q(path)}.new && {chown}"
            f"chmod {mode} {q(path)}.new && mv {q(path)}.new {q(path)}",
            text,
        )

    def psql(self, cluster, sql):
        """Run SQL as the postgres user over the cluster's own socket; rows split on |."""
        output = self.run(
            f"runuser -u postgres -- psql -X -q -At -F '|' -v ON_ERROR_STOP=1 "
            f"-h {q(cluster.socket)} -p {cluster.port} -d postgres",
            sql,
        ).stdout
        return [line.split("|") for line in output.splitlines()]


def provision(conn, sitename, listen_address, clients, port=PORT, cluster=CLUSTER):
    """Make the site's cluster, role and database on the host; return its URL and what changed."""
    name = identifier_for(sitename)
    listen_address = address(listen_address, "--listen-address")
    clients = [address(client, "--clients") for client in clients]
    if not clients:
        raise DeployError("Name at least one client address (--clients) the app hosts use.")
    try:
        port = int(port)
    except ValueError:
        port = 0
    if not 1024 <= port <= 65535:
        raise DeployError(f"--port={port}: PostgreSQL needs a port from 1024 to 65535.")
    host = Host.as_root(conn)
    changes = []
    version = _install_postgresql(host, changes)
    found = _cluster(host, cluster, version, listen_address, port, changes)
    role = _existing_role(host, found, sitename, name)
    _allow_clients(host, found, name, clients, changes)
    password = _password(host, found, name, changes)
    _role_and_database(host, found, sitename, name, password, role, changes)
    return database_url(name, password, listen_address, found.port), changes


def _install_postgresql(host, changes):
    """The newest PostgreSQL version installed, after installing Debian's package if none is."""
    versions = _versions(host)
    if not versions:
        result = host.run(f"apt-get update -q && {INSTALL}", warn=True)
        if result.failed:
            said = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
            raise DeployError(f"apt-get could not install postgresql on the host: {said[-1]}")
        versions = _versions(host)
        changes.append(f"installed postgresql {versions[-1]}")
    return versions[-1]


def _versions(host):
    listing = host.run(
        "command -v pg_createcluster >/dev/null && ls /usr/lib/postgresql/*/bin/postgres "
        "2>/dev/null || true"
    ).stdout
    return sorted({PurePosixPath(path).parts[4] for path in listing.split()}, key=float)


def _clusters(host):
    return host.run("pg_lsclusters --no-header").stdout


def _cluster(host, name, version, listen_address, port, changes):
    """The site's cluster, made and started if needed; refused if it listens elsewhere."""
    found = find_cluster(_clusters(host), name)
    if found is None:
        # Not `-o listen_addresses=...`: pg_createcluster writes 127.0.0.6 unquoted, taking it
        # for a number, and PostgreSQL then refuses to start. The last line of the file wins.
        setting = f"listen_addresses = {_literal(listen_address)}"
        host.run(
            f"pg_createcluster {version} {name} --port {port} --socketdir {q(SOCKETS / name)} "
            f"-- --auth-local=peer --auth-host=scram-sha-256 && "
            f"echo {q(setting)} >> /etc/postgresql/{version}/{name}/postgresql.conf"
        )
        changes.append(f"created cluster {version}/{name} on {listen_address}:{port}")
        found = find_cluster(_clusters(host), name)
    setting, socket = (
        host.run(f"pg_conftool -s {found.version} {name} show {key} || true").stdout.strip()
        for key in ("listen_addresses", "unix_socket_directories")
    )
    if (setting, found.port) != (listen_address, port):
        raise DeployError(
            f"The cluster {found.label} on the database host listens on {setting or 'localhost'}"
            f" port {found.port}, not {listen_address} port {port}. Give --listen-address "
            f"{setting or 'localhost'} --port {found.port}, or change the cluster first "
            f"(pg_conftool, then pg_ctlcluster {found.version} {name} restart)."
        )
    if not found.running:
        host.run(found.ctl("start"))
        changes.append(f"started cluster {found.label}")
    # psql reaches it through the first of its socket folders (Debian's default when unset).
    return dataclasses.replace(found, running=True, socket=socket.split(",")[0] or SOCKETS)


def _existing_role(host, cluster, sitename, name):
    """The role's stored password verifier ("" if it has none), or None if there is no role."""
    rows = host.psql(
        cluster,
        f"SELECT coalesce(rolpassword, ''), coalesce(shobj_description(oid, 'pg_authid'), '') "
        f"FROM pg_authid WHERE rolname = {_literal(name)}",
    )
    if not rows:
        return None
    verifier, owner = rows[0][0], "|".join(rows[0][1:])
    if owner != _owner(sitename):
        raise DeployError(
            f"The role {name} in cluster {cluster.label} is not the site {sitename}'s (its "
            f"comment: {owner or 'none'}): another site's name gives the same role name. Nothing "
            f"was changed for it; use another --sitename or another cluster."
        )
    return verifier


def _allow_clients(host, cluster, name, clients, changes):
    path = PurePosixPath(
        host.run(f"pg_conftool -s {cluster.version} {cluster.name} show hba_file").stdout.strip()
    )
    current = host.read(path)
    wanted = hba_conf(current, name, clients)
    if wanted != current:
        host.write(path, wanted, mode="640", owner="postgres:postgres")
        host.run(cluster.ctl("reload"))
        changes.append(f"let {name} in from {', '.join(clients)} only (pg_hba.conf)")


def _password(host, cluster, name, changes):
    """The role's password: the one stored on the host, or a new one, stored."""
    path = PASSWORDS / cluster.name / name
    stored = host.read(path).strip()
    if stored:
        return stored
    password = secrets.token_urlsafe(32)
    host.run(f"mkdir -p {q(PASSWORDS.parent)} && umask 077 && mkdir -p {q(path.parent)}")
    host.write(path, password + "\n")
    changes.append(f"generated {name}'s password (kept in {path}, for root only)")
    return password


def _role_and_database(host, cluster, sitename, name, password, verifier, changes):
    ident = f'"{name}"'
    statements = []
    if verifier is None:
        statements += [
            f"CREATE ROLE {ident} LOGIN PASSWORD {_literal(scram_verifier(password))}",
            f"COMMENT ON ROLE {ident} IS {_literal(_owner(sitename))}",
        ]
        changes.append(f"created role {name}")
    elif not scram_matches(verifier, password):
        statements.append(f"ALTER ROLE {ident} LOGIN PASSWORD {_literal(scram_verifier(password))}")
        changes.append(f"set {name}'s password to the stored one")
    exists = host.psql(cluster, f"SELECT 1 FROM pg_database WHERE datname = {_literal(name)}")
    if not exists:
        statements += [
            f"CREATE DATABASE {ident} OWNER {ident}",
            f"REVOKE ALL ON DATABASE {ident} FROM PUBLIC",
        ]
        changes.append(f"created database {name}")
    if statements:
        host.psql(cluster, ";\n".join(statements) + ";\n")


def _owner(sitename):
    return f"superlists site {sitename}"


def _literal(text):
    return "'" + text.replace("'", "''") + "'"


# --- on the app hosts -----------------------------------------------------------------------


def app_host_connections(config, app_hosts):
    """An open SSH connection to each app host (user@host[:port], comma-separated), keys checked."""
    hosts = [host.strip() for host in app_hosts.split(",") if host.strip()]
    if not hosts:
        raise DeployError(
            "Name the app hosts whose .env gets DATABASE_URL: --app-hosts user@web1,user@web2."
        )
    return [
        connect.open_connection(
            connect.adopt(
                Connection(host, config=config, connect_timeout=10),
                names=connect.DEPLOY_NAMES,
                user_named="@" in host,
            )
        )
        for host in hosts
    ]


def client_addresses(clients, app_connections):
    """--clients as addresses, or else the address each app host was reached at."""
    given = [client for client in clients.split(",") if client.strip()]
    if given:
        return [address(client, "--clients") for client in given]
    return [app.client.get_transport().getpeername()[0] for app in app_connections]


def write_database_url(conn, sitename, url, replace=False):
    """Put url in the site's .env on an app host, keeping every other key; say what was done."""
    host = Host(conn)
    paths = SitePaths.for_connection(conn, sitename)
    # After a deploy .env links to the live release's own .env, which the next deploy reads.
    target = PurePosixPath(
        host.run(f"readlink -f {q(paths.env)} || echo {q(paths.env)}").stdout.strip()
    )
    current = host.read(target)
    existing = parse_dotenv(current).get("DATABASE_URL", "")
    if existing == url:
        return f"{target} already has DATABASE_URL={shown(url)}"
    if existing and not same_database(existing, url) and not replace:
        raise DeployError(
            f"{target} already has DATABASE_URL={shown(existing)}: the site's data is there, "
            f"and would stay behind. Stop the site, run again with --replace, then move the "
            f"data (README: Moving a SQLite site to PostgreSQL)."
        )
    host.write(target, merged_dotenv(current, url))
    return f"DATABASE_URL={shown(url)} written to {target}"
