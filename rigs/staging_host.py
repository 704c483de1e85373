"""A staging host on a loopback address: `python -m rigs.staging_host up|down|status`.

Run as root on Debian. It starts, bound only to the staging address, OpenSSH (for Fabric),
supervisord (which runs nginx and every site's gunicorn), Postfix with SMTP AUTH through
Dovecot, and Dovecot POP3/POP3S with a catch-all mailbox for @staging.test, and writes the
settings a developer needs into STATE_DIR/staging.env. `down` stops all of it by pid file.
"""

import argparse
import contextlib
import ipaddress
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from deploy_tools.sitepaths import HOST_RUN_DIR, HOST_SITES_DIR
from rigs import REPO
from rigs.processes import alive, descendants, owned_by, wait_until

TEMPLATES = REPO / "deploy_tools" / "templates"

ADDRESS = "127.0.0.2"
DEPLOY_USER = "superlists"
MAIL_USER = "stagingmail"  # owns the catch-all Maildir and logs in over POP3
SMTP_USER = "superlists-smtp"  # the site's SMTP AUTH account (Dovecot-only, no system user)
MAIL_DOMAIN = "staging.test"
RUN_DIR = Path(HOST_RUN_DIR)
SITES_DIR = Path(HOST_SITES_DIR)
POSTFIX_PID = Path("/var/spool/postfix/pid/master.pid")
POSTFIX_LOG = Path("/var/log/superlists-staging-postfix.log")
PACKAGES = ("openssh-server", "nginx", "postfix", "dovecot-pop3d", "supervisor", "rsync")
# certutil: the browser trusts the staging CA through an NSS database (no ignored errors).
BROWSER_PACKAGES = ("chromium", "chromium-driver", "libnss3-tools")
DEBCONF = (
    "postfix postfix/main_mailer_type select No configuration",
    f"postfix postfix/mailname string {MAIL_DOMAIN}",
)
# The scale-out rehearsal's machines (rigs/scale_out.py), each a loopback address with its
# own deploy user and home standing for its own disk: two app hosts, the load balancer, and
# the database host, which fab reaches as root (it installs and configures PostgreSQL).
APP_HOSTS = {"superlists-web1": "127.0.0.3", "superlists-web2": "127.0.0.4"}
BALANCER_USER, BALANCER_ADDRESS = "superlists-lb", "127.0.0.5"
DATABASE_ADDRESS = "127.0.0.6"
ROOT_KEYS = Path("/etc/superlists/root_authorized_keys")  # root's keys on DATABASE_ADDRESS only
SSH_ADDRESSES = (ADDRESS, *APP_HOSTS.values(), BALANCER_ADDRESS, DATABASE_ADDRESS)
DEPLOY_USERS = (DEPLOY_USER, *APP_HOSTS, BALANCER_USER)
# Every address the staging certificate names: the staging host, and the balancer.
TLS_ADDRESSES = (ADDRESS, BALANCER_ADDRESS)
PORTS = {"ssh": 22, "smtp": 25, "submission": 587, "pop3": 110, "pop3s": 995}


class StagingError(Exception):
    """The staging host cannot be brought up or down; the message says why."""


# --- small helpers -----------------------------------------------------------------------


def run(*command, check=True, quiet=True, **kwargs):
    """Run a command; on failure raise StagingError with its output."""
    result = subprocess.run(command, capture_output=quiet, text=True, check=False, **kwargs)
    if check and result.returncode:
        output = ((result.stderr or "") + (result.stdout or "")).strip()[-1500:]
        raise StagingError(f"{shlex.join(command)} failed ({result.returncode}):\n{output}")
    return result


def start_daemon(*command, log):
    """Start a daemon that detaches; its inherited output goes to log, not to a pipe we wait on."""
    with open(log, "ab") as output:
        result = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, check=False
        )
    if result.returncode:
        tail = Path(log).read_text(errors="replace").strip()[-1500:]
        raise StagingError(f"{shlex.join(map(str, command))} failed ({result.returncode}):\n{tail}")


def write(path, text, mode=0o644, owner=None):
    """Write a file only when its content changes; return whether it did."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    changed = not path.exists() or path.read_text() != text
    if changed:
        path.write_text(text)
    path.chmod(mode)
    if owner:
        shutil.chown(path, *owner)
    return changed


def render(template_name, **values):
    text = (TEMPLATES / template_name).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    return text


def read_pid(pid_file):
    try:
        return int(Path(pid_file).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running(pid_file):
    pid = read_pid(pid_file)
    return pid if pid and alive(pid) else None


def stop_pid(name, pid_file, timeout=20.0, sig=15, command=None):
    """Stop the daemon in pid_file (by signal, or by command) and wait for its whole tree."""
    pid = running(pid_file)
    if not pid:
        return False
    tree = [pid, *descendants(pid)]
    if command:
        run(*command, check=False)
    else:
        os.kill(pid, sig)

    def still_running():
        left = ", ".join(str(p) for p in tree if alive(p))
        return StagingError(f"{name} did not stop within {timeout:.0f} s (pids {left}).")

    wait_until(
        lambda: not any(alive(p) for p in tree), name, timeout=timeout, failure=still_running
    )
    return True


def wait_for_port(port, what, timeout=10.0):
    def connect():
        with socket.create_connection((ADDRESS, port), timeout=0.5):
            return True

    wait_until(
        connect,
        what,
        timeout=timeout,
        failure=lambda: StagingError(
            f"{what} is not listening on {ADDRESS}:{port} after {timeout:.0f} s."
        ),
    )


def secret(path):
    """A password kept in the state dir so that re-running `up` does not change it."""
    path = Path(path)
    if not path.exists():
        write(path, secrets.token_urlsafe(18), mode=0o600)
    return path.read_text().strip()


@contextmanager
def phase(title):
    started = time.monotonic()
    print(f"{title} ...", flush=True)
    yield
    print(f"{title}: {time.monotonic() - started:.2f} s", flush=True)


# --- the pieces ---------------------------------------------------------------------------


def install_packages(with_browser):
    wanted = PACKAGES + (BROWSER_PACKAGES if with_browser else ())
    missing = [
        name
        for name in wanted
        if "install ok installed"
        not in run("dpkg-query", "-W", "-f=${Status}", name, check=False).stdout
    ]
    if not missing:
        return
    print(f"  installing {' '.join(missing)}", flush=True)
    run("debconf-set-selections", input="\n".join(DEBCONF) + "\n")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300"]
    install += ["--no-install-recommends", *missing]
    if run(*install, check=False, env=env).returncode:
        run("apt-get", "update", "-q", env=env)
        run(*install, env=env)


def ensure_user(name, shell):
    try:
        pwd.getpwnam(name)
    except KeyError:
        run("useradd", "--create-home", "--shell", shell, name)
    # useradd leaves the account locked ("!"), and sshd without PAM then refuses even keys;
    # "*" allows key logins and no password.
    run("usermod", "-p", "*", name)
    home = Path(pwd.getpwnam(name).pw_dir)
    # nginx's workers (www-data) must reach the sites' sockets and static files.
    home.chmod(0o755)
    return home


def make_users(state):
    ensure_user(MAIL_USER, "/usr/sbin/nologin")
    key = state / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "superlists-staging", "-f", key)
    public = Path(f"{key}.pub").read_text()
    for user in DEPLOY_USERS:
        home = ensure_user(user, "/bin/bash")
        allow_sites(user)
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.chown(ssh_dir, user, user)
        write(ssh_dir / "authorized_keys", public, mode=0o600, owner=(user, user))
        if user != DEPLOY_USER:
            # One supervisord stands for each machine's own: its socket is the group's.
            run("usermod", "-aG", DEPLOY_USER, user)
    ROOT_KEYS.parent.mkdir(parents=True, exist_ok=True)
    write(ROOT_KEYS, public, mode=0o600)


def allow_sites(user):
    """Let user's sites into root's nginx and supervisord: their folder, socket group."""
    SITES_DIR.mkdir(parents=True, exist_ok=True)
    for folder in (SITES_DIR.parent, SITES_DIR):
        folder.chmod(0o755)  # root's: only root makes a user's folder here
    folder = SITES_DIR / user
    folder.mkdir(exist_ok=True)
    shutil.chown(folder, user, user)
    # Links to sites removed since (a rehearsal starts clean) would stop nginx from starting.
    for link in folder.iterdir():
        if link.is_symlink() and not link.exists():
            link.unlink()
    # gunicorn's socket is srwxrwx---: nginx's workers reach it as members of the user's group.
    run("usermod", "-aG", user, "www-data")


def make_tls(state):
    """A local CA, a certificate it signs for the staging names, and bundles that trust it."""
    tls = state / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = tls / "ca.crt", tls / "ca.key"
    cert, key = tls / "staging.crt", tls / "staging.key"
    if not ca_cert.exists():
        run(
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            "-subj", "/CN=Superlists staging CA (this machine only)",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", ca_key, "-out", ca_cert,
        )  # fmt: skip
        ca_key.chmod(0o600)
        cert.unlink(missing_ok=True)
    if not cert.exists():
        names = ",".join(
            [*(f"IP:{address}" for address in TLS_ADDRESSES), f"DNS:mail.{MAIL_DOMAIN}"]
        )
        extensions = tls / "staging.ext"
        write(
            extensions,
            f"subjectAltName={names}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        run(
            "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={ADDRESS}",
            "-keyout", key, "-out", tls / "staging.csr",
        )  # fmt: skip
        key.chmod(0o600)
        run(
            "openssl", "x509", "-req", "-in", tls / "staging.csr", "-days", "30",
            "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
            "-extfile", extensions, "-out", cert,
        )  # fmt: skip
    bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_text() + ca_cert.read_text()
    write(tls / "ca-bundle.pem", bundle)
    return cert, key


def start_sshd(state):
    ssh = state / "ssh"
    host_key = ssh / "ssh_host_ed25519_key"
    if not host_key.exists():
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key)
    public = Path(f"{host_key}.pub").read_text().split()
    write(
        ssh / "known_hosts",
        "".join(f"{address} {public[0]} {public[1]}\n" for address in SSH_ADDRESSES),
    )
    config = ssh / "sshd_config"
    daemon_log = state / "logs" / "daemons.log"
    pid_file = state / "run" / "sshd.pid"
    listen = "".join(f"ListenAddress {address}:{PORTS['ssh']}\n" for address in SSH_ADDRESSES)
    changed = write(
        config,
        f"""# sshd for the Superlists staging host (rigs/staging_host.py).
{listen}HostKey {host_key}
PidFile {pid_file}
AllowUsers {" ".join(DEPLOY_USERS)} root
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
AuthorizedKeysFile .ssh/authorized_keys
PrintMotd no
X11Forwarding no
# The functional tests keep one connection open and run many commands over it.
MaxSessions 50
MaxStartups 50:30:100
Subsystem sftp internal-sftp

# The database host is provisioned as root (apt, pg_createcluster), with the rehearsal's key.
Match LocalAddress {DATABASE_ADDRESS}
    PermitRootLogin prohibit-password
    AuthorizedKeysFile {ROOT_KEYS}
""",
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    run("/usr/sbin/sshd", "-t", "-f", config)
    pid = running(pid_file)
    if pid and changed:
        os.kill(pid, 1)
    elif not pid:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        start_daemon(
            "/usr/sbin/sshd", "-f", config, "-E", state / "logs" / "sshd.log", log=daemon_log
        )
    wait_for_port(PORTS["ssh"], "sshd")


def start_dovecot(state, cert, key):
    dovecot = state / "dovecot"
    base_dir = dovecot / "run"
    users = dovecot / "users"
    mail = pwd.getpwnam(MAIL_USER)
    smtp_password, pop3_password = secret(state / "smtp-password"), secret(state / "pop3-password")
    write(
        users,
        f"{MAIL_USER}:{{PLAIN}}{pop3_password}:{mail.pw_uid}:{mail.pw_gid}::{mail.pw_dir}::\n"
        f"{SMTP_USER}:{{PLAIN}}{smtp_password}::::::\n",
        mode=0o640,
        owner=("root", "dovecot"),
    )
    config = dovecot / "dovecot.conf"
    changed = write(
        config,
        f"""# Dovecot for the Superlists staging host: POP3 for the mailbox, SASL for Postfix.
protocols = pop3
listen = {ADDRESS}
base_dir = {base_dir}
log_path = {state / "logs" / "dovecot.log"}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh = </usr/share/dovecot/dh.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %n
# Without these a wrong password costs seconds and slows the next correct login too.
auth_failure_delay = 0
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {PORTS["pop3"]}
  }}
  inet_listener pop3s {{
    port = {PORTS["pop3s"]}
    ssl = yes
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
""",
    )
    base_dir.mkdir(parents=True, exist_ok=True)
    base_dir.chmod(0o755)
    pid = running(base_dir / "master.pid")
    if pid and changed:
        run("doveadm", "-c", config, "reload")
    elif not pid:
        start_daemon("/usr/sbin/dovecot", "-c", config, log=state / "logs" / "daemons.log")
    wait_for_port(PORTS["pop3"], "Dovecot POP3")
    wait_for_port(PORTS["pop3s"], "Dovecot POP3S")
    return base_dir / "auth-postfix"


def start_postfix(state, cert, key, sasl_socket):
    refuse = "error:the staging host never sends mail off this machine"
    settings = {
        "myhostname": f"mail.{MAIL_DOMAIN}",
        "mydomain": MAIL_DOMAIN,
        "myorigin": MAIL_DOMAIN,
        "mydestination": f"{MAIL_DOMAIN}, localhost",
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        # Empty: with permit_mynetworks every loopback client could send unauthenticated.
        "mynetworks": "",
        "relay_domains": "",
        "home_mailbox": "Maildir/",
        "recipient_delimiter": "+",
        # Every address @staging.test lands in one mailbox.
        "local_recipient_maps": "",
        "luser_relay": MAIL_USER,
        "default_transport": refuse,
        "relay_transport": refuse,
        "maillog_file": str(POSTFIX_LOG),
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": str(sasl_socket),
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_tls_chain_files": f"{key}, {cert}",
        "smtpd_tls_security_level": "may",
        "smtpd_tls_auth_only": "no",
        "smtpd_delay_reject": "no",
        # Like a real provider: no MAIL FROM without logging in first.
        "smtpd_sender_restrictions": (
            "permit_sasl_authenticated, "
            "check_sender_access static:{530 5.7.0 Authentication required}"
        ),
        "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
        "smtpd_recipient_restrictions": "reject_unauth_destination",
        "biff": "no",
    }
    main_cf = Path("/etc/postfix/main.cf")
    if not main_cf.exists():
        # Debian's "No configuration" answer installs Postfix without a main.cf.
        shutil.copy("/usr/share/postfix/main.cf.debian", main_cf)
    settings["compatibility_level"] = "3.6"
    settings["alias_maps"] = settings["alias_database"] = "hash:/etc/aliases"
    run("postconf", "-e", *(f"{name}={value}" for name, value in settings.items()))
    # No chroot (its copies of resolv.conf etc. are not set up here), and smtpd only on the
    # staging address: drop the wildcard smtp listener, add 25 and a submission port.
    run("postconf", "-F", "*/*/chroot = n")
    run("postconf", "-X", "-M", "smtp/inet", check=False)
    run("postconf", "-M", f"{ADDRESS}:smtp/inet={ADDRESS}:smtp inet n - n - - smtpd")
    run(
        "postconf",
        "-M",
        f"{ADDRESS}:submission/inet={ADDRESS}:submission inet n - n - - smtpd",
    )
    run("postconf", "-P", f"{ADDRESS}:submission/inet/smtpd_tls_security_level=encrypt")
    run("postconf", "-P", f"{ADDRESS}:submission/inet/smtpd_tls_auth_only=yes")
    run("postconf", "-M", "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd")
    if not Path("/etc/aliases.db").exists():
        run("newaliases")
    action = "reload" if running(POSTFIX_PID) else "start"
    start_daemon("postfix", action, log=state / "logs" / "daemons.log")
    wait_for_port(PORTS["smtp"], "Postfix SMTP")
    wait_for_port(PORTS["submission"], "Postfix submission")


def start_supervisord(state):
    (RUN_DIR / "nginx").mkdir(parents=True, exist_ok=True)
    RUN_DIR.chmod(0o755)
    write(
        RUN_DIR / "nginx" / "nginx.conf",
        render("nginx-host.conf", run_dir=RUN_DIR, sites_dir=SITES_DIR),
    )
    config = state / "supervisord.conf"
    write(
        config,
        render(
            "supervisord-host.conf", run_dir=RUN_DIR, deploy_user=DEPLOY_USER, sites_dir=SITES_DIR
        ),
    )
    run(
        "/usr/sbin/nginx",
        "-t",
        "-q",
        "-c",
        RUN_DIR / "nginx" / "nginx.conf",
        "-p",
        RUN_DIR / "nginx",
    )
    if running(RUN_DIR / "supervisord.pid"):
        # Picks up a changed nginx program or site includes; running programs keep going.
        run("supervisorctl", "-c", config, "update")
    else:
        start_daemon("supervisord", "-c", config, log=state / "logs" / "daemons.log")
    wait_until(
        lambda: (
            "RUNNING" in run("supervisorctl", "-c", config, "status", "nginx", check=False).stdout
        ),
        "nginx under supervisord",
        timeout=10,
        interval=0.1,
        failure=lambda: StagingError(
            f"supervisord did not start nginx; see {RUN_DIR}/nginx/error.log."
        ),
    )


def write_environment(state):
    """The settings for fab deploy (EMAIL_*), the FTs (STAGING_*, POP3_*) as a sourceable file."""
    values = {
        "STAGING_SERVER": ADDRESS,
        "STAGING_SSH_USER": DEPLOY_USER,
        "STAGING_SSH_KEY": state / "ssh" / "id_ed25519",
        "SUPERLISTS_KNOWN_HOSTS": state / "ssh" / "known_hosts",
        "STAGING_EMAIL_DOMAIN": MAIL_DOMAIN,
        "EMAIL_HOST": ADDRESS,
        "EMAIL_PORT": PORTS["smtp"],
        "EMAIL_HOST_USER": SMTP_USER,
        "EMAIL_PASSWORD": secret(state / "smtp-password"),
        "DEFAULT_FROM_EMAIL": f"Superlists <noreply@{MAIL_DOMAIN}>",
        "SERVER_SSL_CERT_FILE": state / "tls" / "ca-bundle.pem",
        "POP3_HOST": ADDRESS,
        "POP3_PORT": PORTS["pop3s"],
        "POP3_SSL": "1",
        "POP3_USER": MAIL_USER,
        "POP3_PASSWORD": secret(state / "pop3-password"),
        "POP3_CAFILE": state / "tls" / "ca.crt",
        # The browser trusts this CA (functional_tests/browsers.py), so an https site deployed
        # with --tls-cert/--tls-key below is checked as a visitor's browser would check it.
        "STAGING_CA_CERT": state / "tls" / "ca.crt",
    }
    text = "".join(f"export {key}={shlex.quote(str(value))}\n" for key, value in values.items())
    write(state / "staging.env", text, mode=0o600)
    return values


# --- commands -----------------------------------------------------------------------------


def up(state, with_browser):
    started = time.monotonic()
    with phase("packages"):
        install_packages(with_browser)
    with phase("users and keys"):
        state.mkdir(parents=True, exist_ok=True)
        state.chmod(0o755)  # Postfix reaches Dovecot's auth socket inside it
        for sub in ("logs", "run"):
            (state / sub).mkdir(exist_ok=True)
        make_users(state)
        cert, key = make_tls(state)
    with phase("sshd"):
        start_sshd(state)
    with phase("dovecot"):
        sasl_socket = start_dovecot(state, cert, key)
    with phase("postfix"):
        start_postfix(state, cert, key, sasl_socket)
    with phase("supervisord and nginx"):
        start_supervisord(state)
    values = write_environment(state)
    print(f"\nStaging host up on {ADDRESS} in {time.monotonic() - started:.1f} s.")
    print(f"Its settings are in {state / 'staging.env'}; for example:\n")
    print(f"  set -a; . {state / 'staging.env'}; set +a")
    user_host = f"{values['STAGING_SSH_USER']}@{ADDRESS}"
    print(f"  .venv/bin/fab -H {user_host} provision --listen-address {ADDRESS}")
    print(f"  .venv/bin/fab -H {user_host} deploy --staging --listen-address {ADDRESS}")
    print(f"  STAGING_SERVER={ADDRESS} .venv/bin/python manage.py test functional_tests")
    tls = state / "tls"
    print("\nOr over https, with a certificate from the staging CA the FT browser trusts:\n")
    print(
        f"  .venv/bin/fab -H {user_host} deploy --staging --listen-address {ADDRESS} "
        f"--tls-cert {tls / 'staging.crt'} --tls-key {tls / 'staging.key'}"
    )
    print(
        f"  STAGING_SERVER=https://{ADDRESS} SSL_CERT_FILE={tls / 'ca-bundle.pem'} "
        ".venv/bin/python manage.py test functional_tests"
    )
    return values


def down(state):
    started = time.monotonic()
    with phase("sshd"):
        stop_pid("sshd", state / "run" / "sshd.pid")
    with phase("supervisord, nginx and gunicorn"):
        stop_pid("supervisord", RUN_DIR / "supervisord.pid", timeout=40)
    with phase("postfix"):
        stop_pid("postfix", POSTFIX_PID, command=("postfix", "stop"))
    with phase("dovecot"):
        stop_pid("dovecot", state / "dovecot" / "run" / "master.pid")
    with phase("leftover processes"):
        for user in DEPLOY_USERS:
            stop_user_processes(user)
    print(f"Staging host down in {time.monotonic() - started:.1f} s.")
    leftovers = listening()
    if leftovers:
        raise StagingError(f"Something still listens on {ADDRESS}: {', '.join(leftovers)}.")


def stop_user_processes(user):
    """Stop what the deploy user still runs (an SSH session, a stray gunicorn), by pid."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return
    pids = owned_by(uid)
    for pid in pids:
        print(f"  stopping pid {pid} of {user}")
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            continue
    with contextlib.suppress(TimeoutError):  # what is left is reported by `down`'s port check
        wait_until(lambda: not any(alive(pid) for pid in pids), f"{user}'s processes", timeout=10)


def listening():
    """Which of the staging ports still accept connections."""
    open_ports = []
    for name, port in {**PORTS, "http": 80}.items():
        try:
            with socket.create_connection((ADDRESS, port), timeout=0.2):
                open_ports.append(f"{name} ({port})")
        except OSError:
            continue
    return open_ports


def status(state):
    daemons = {
        "sshd": state / "run" / "sshd.pid",
        "supervisord (nginx, gunicorn)": RUN_DIR / "supervisord.pid",
        "postfix": POSTFIX_PID,
        "dovecot": state / "dovecot" / "run" / "master.pid",
    }
    up_count = 0
    for name, pid_file in daemons.items():
        pid = running(pid_file)
        up_count += bool(pid)
        print(f"{name:32} {'running, pid ' + str(pid) if pid else 'stopped'}")
    if running(RUN_DIR / "supervisord.pid"):
        print(run("supervisorctl", "-c", state / "supervisord.conf", "status", check=False).stdout)
    print(f"listening on {ADDRESS}: {', '.join(listening()) or 'nothing'}")
    return up_count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("SUPERLISTS_STAGING_DIR", "/tmp/superlists-staging")),
        help="where keys, configs, logs and staging.env live (default /tmp/superlists-staging)",
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="do not install chromium and chromium-driver",
    )
    args = parser.parse_args(argv)
    assert ipaddress.ip_address(ADDRESS).is_loopback
    if os.geteuid() != 0:
        print("staging_host.py must run as root (it starts sshd, nginx and mail servers).")
        return 2
    state = args.state_dir.resolve()
    try:
        if args.command == "up":
            up(state, with_browser=not args.no_browser)
        elif args.command == "down":
            down(state)
        else:
            status(state)
    except StagingError as error:
        print(f"staging_host.py {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
