"""SSH connections to a Superlists server, with the host key checked against known_hosts."""

from pathlib import Path

import paramiko
from fabric import Connection

from superlists.env import BadVariable, Variables

WHERE_TO_SET = "in the environment you run fab or the functional tests from"


class ConnectError(Exception):
    """A connection could not be opened; the message says why and what to do."""


def _fingerprint(key):
    return f"{key.get_name()} {key.fingerprint}"


def _known_hosts_name(hostname, port):
    # known_hosts spells a non-default port as [host]:port.
    return hostname if port == 22 else f"[{hostname}]:{port}"


class RefuseUnknownHost(paramiko.MissingHostKeyPolicy):
    """Refuse a host whose key is not in the known-hosts file, saying how to trust it."""

    def __init__(self, known_hosts):
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key):
        raise ConnectError(
            f"The SSH host key of {hostname} ({_fingerprint(key)}) is not in "
            f"{self.known_hosts}. If you trust this host, add its key there "
            f"(ssh-keyscan {hostname} >> {self.known_hosts}, then compare the fingerprint), "
            f"or run once with SUPERLISTS_ACCEPT_NEW_HOST=1 to record it on first use."
        )


class AcceptNewHost(paramiko.MissingHostKeyPolicy):
    """Record an unknown host's key in the known-hosts file (trust on first use, opted into)."""

    def __init__(self, known_hosts):
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key):
        # Append rather than rewrite the file, as ssh's StrictHostKeyChecking=accept-new does.
        entry = paramiko.hostkeys.HostKeyEntry([hostname], key)
        with open(self.known_hosts, "a", encoding="ascii") as known:
            known.write(entry.to_line())
        client.get_host_keys().add(hostname, key.get_name(), key)


# fab deploys with the DEPLOY_SSH_* names (production is not staging), falling back to the
# STAGING_SSH_* ones it used to read; the functional tests read STAGING_SSH_* only.
DEPLOY_NAMES = ("DEPLOY_SSH", "STAGING_SSH")
STAGING_NAMES = ("STAGING_SSH",)


def settings_from_environment(environ=None, names=STAGING_NAMES):
    """The SSH settings a developer or CI sets in the environment, with their defaults."""
    variables = Variables(environ, where=WHERE_TO_SET)

    def name(setting):
        # The first of the names that is set; an error message names the one that was read.
        candidates = [f"{prefix}_{setting}" for prefix in names]
        return next((each for each in candidates if variables.str(each)), candidates[0])

    try:
        return {
            "user": variables.str(name("USER")) or None,
            "key_filename": variables.str(name("KEY")) or None,
            "port": variables.int(name("PORT"), None, minimum=1, what="a port number"),
            "known_hosts": variables.str(
                "SUPERLISTS_KNOWN_HOSTS", str(Path.home() / ".ssh" / "known_hosts")
            ),
            "accept_new": variables.bool("SUPERLISTS_ACCEPT_NEW_HOST"),
        }
    except BadVariable as error:
        raise ConnectError(str(error)) from None


def verify_host_keys(connection, known_hosts, accept_new=False):
    """Make an unopened Fabric connection check the server's key against known_hosts."""
    known_hosts = str(known_hosts)
    path = Path(known_hosts)
    if path.exists():
        connection.client.load_host_keys(known_hosts)
    elif accept_new:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
    # Without a file every key is unknown, which RefuseUnknownHost reports with the path.
    policy = AcceptNewHost(known_hosts) if accept_new else RefuseUnknownHost(known_hosts)
    connection.client.set_missing_host_key_policy(policy)
    connection.known_hosts_file = known_hosts
    return connection


def adopt(conn, environ=None, names=STAGING_NAMES, user_named=False):
    """Apply the SSH settings from the environment to an unopened Fabric connection.

    user_named: the host string named its user. Fabric fills in the local user when it names
    none and keeps no trace of the string, so `root@db` typed by root would look unnamed.
    """
    settings = settings_from_environment(environ, names)
    # Fabric fills in the local user and port 22 when the host string names none; only
    # then do the environment's settings apply (user@host:port on the command line wins).
    if settings["user"] and not user_named and conn.user == conn.config.user:
        conn.user = settings["user"]
    if settings["key_filename"] and not conn.connect_kwargs.get("key_filename"):
        # An explicit key means exactly that key: no agent, no ~/.ssh/id_* guessing.
        conn.connect_kwargs.update(
            key_filename=settings["key_filename"], allow_agent=False, look_for_keys=False
        )
    if settings["port"] and conn.port == conn.config.port:
        conn.port = settings["port"]
    return verify_host_keys(conn, settings["known_hosts"], settings["accept_new"])


def connection(host, environ=None):
    """A Fabric connection to "[user@]host[:port]" that verifies the host key."""
    return adopt(Connection(host, connect_timeout=10), environ, user_named="@" in host)


def _abandon(conn):
    """Close a connection that failed to open: its half-open transport would keep sshd busy."""
    # Fabric's close() only acts on a connection that finished opening.
    conn.client.close()


def open_connection(conn):
    """Open conn, turning SSH failures into a ConnectError whose message says what to do."""
    where = f"{conn.user}@{conn.host}:{conn.port}"
    try:
        conn.open()
    except ConnectError:
        _abandon(conn)
        raise
    except paramiko.BadHostKeyException as error:
        _abandon(conn)
        raise ConnectError(
            f"The SSH host key of {conn.host} has CHANGED (now {_fingerprint(error.key)}); "
            f"this may be an attack, or the server was rebuilt. If you know it was rebuilt, "
            f"remove the old entry (ssh-keygen -R {_known_hosts_name(conn.host, conn.port)} "
            f"-f {getattr(conn, 'known_hosts_file', '~/.ssh/known_hosts')}) and trust the new key."
        ) from None
    except paramiko.AuthenticationException:
        _abandon(conn)
        raise ConnectError(
            f"{where} refused our SSH key. Check the user (user@host, or DEPLOY_SSH_USER for fab, "
            f"STAGING_SSH_USER for the functional tests) and the key file (fab -i, or "
            f"DEPLOY_SSH_KEY / STAGING_SSH_KEY), and that its public half is in "
            f"~/.ssh/authorized_keys on the server."
        ) from None
    except (OSError, paramiko.SSHException) as error:
        _abandon(conn)
        raise ConnectError(f"Could not connect to {where}: {error}.") from None
    return conn


def user_named_in(hosts_argument, conn):
    """Whether a -H value ("a,user@b:22") names conn's user for conn's host."""
    for host in hosts_argument.split(","):
        user, at, rest = host.strip().partition("@")
        if at and user == conn.user and rest.split(":")[0] == conn.host:
            return True
    return False
