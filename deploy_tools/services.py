"""The two service managers a host may run the site under: systemd, or root's supervisord."""

from deploy_tools import remote
from deploy_tools.errors import DeployError
from deploy_tools.remote import q
from deploy_tools.sitepaths import (
    HOST_SITES_DIR,
    NGINX_ERROR_LOG,
    NGINX_PID,
    NGINX_PROGRAM,
    NGINX_USER,
    SUPERVISOR_SOCKET,
    host_include,
)

SUPERVISORCTL = f"supervisorctl -s unix://{SUPERVISOR_SOCKET}"
# nginx answers a HUP within milliseconds: new workers, or an [emerg] in its error log.
NGINX_RELOAD_TIMEOUT = 5


class Systemd:
    """A host with systemd: the deploy user installs the unit and nginx site with sudo."""

    name = "systemd"
    template = "gunicorn.service"

    def service_file(self, paths):
        return paths.systemd_unit

    def check_host(self, conn, site):
        """Refuse, with what to do, when the deploy user cannot sudo."""
        if not remote.ok(conn, "sudo -n true"):
            raise DeployError(
                f"{conn.user} needs passwordless sudo on {conn.host} to install the systemd "
                f"unit and nginx site (see deploy_tools/provisioning_notes.md)."
            )

    def install(self, conn, site, live, service_changed):
        """Enable the unit and nginx site; restart gunicorn if its unit changed or it is down."""
        p = site.paths
        unit = f"/etc/systemd/system/{p.service}.service"
        # The gunicorn socket is srwxrwx---: nginx's workers reach it as members of our group.
        remote.run(
            conn,
            f"id -nG {NGINX_USER} | grep -qw {q(site.user)} || "
            f"{{ sudo -n usermod -aG {q(site.user)} {NGINX_USER} && "
            f"sudo -n systemctl reload nginx; }}",
        )
        self.link_nginx(conn, site)
        remote.run(
            conn,
            f"sudo -n cp {q(self.service_file(p))} {unit} && sudo -n systemctl daemon-reload && "
            f"sudo -n systemctl enable {p.service}",
        )
        if live and (service_changed or not remote.ok(conn, f"systemctl is-active {p.service}")):
            remote.run(conn, f"sudo -n systemctl restart {p.service}")

    def link_nginx(self, conn, site):
        """Enable the site's nginx file (the balancer has only this one)."""
        p = site.paths
        remote.run(
            conn, f"sudo -n ln -sfn {q(p.nginx_conf)} /etc/nginx/sites-enabled/{q(p.sitename)}"
        )

    def reload_nginx(self, conn):
        """Test and reload nginx; return what it said if it refused, else ""."""
        result = remote.run(
            conn, "sudo -n nginx -t -q 2>&1 && sudo -n systemctl reload nginx", warn=True
        )
        said = "; ".join(line for line in result.stdout.splitlines() if line.strip())
        return "" if result.ok else said or f"exit status {result.exited}"

    def remove_nginx_link(self, conn, site):
        link = f"/etc/nginx/sites-enabled/{site.paths.sitename}"
        remote.run(conn, f"sudo -n rm -f {q(link)}")

    def pid_command(self, service):
        return f"systemctl show -p MainPID --value {service}"

    def start_command(self, service):
        return f"sudo -n systemctl start {service}"

    def restart_command(self, service):
        return f"sudo -n systemctl restart {service}"


class Supervisor:
    """A host without systemd: root's supervisord and nginx include the site's files."""

    name = "supervisor"
    template = "gunicorn-supervisor.conf"

    def service_file(self, paths):
        return paths.supervisor_conf

    def check_host(self, conn, site):
        """Refuse, with what to do, when root has not set up the site's folder or supervisord."""
        folder = HOST_SITES_DIR / site.user
        if not remote.ok(
            conn, f"test -d {q(folder)} && test -w {q(folder)} && test -O {q(folder)}"
        ):
            raise DeployError(
                f"This host has no systemd, and {folder} (where root's nginx and supervisord "
                f"look for {site.user}'s sites) is missing or not {site.user}'s. As root: "
                f"install -d -o {site.user} -m 755 {folder} "
                f"(see deploy_tools/provisioning_notes.md)."
            )
        if not remote.ok(conn, f"id -nG {NGINX_USER} | grep -qw {q(site.user)}"):
            raise DeployError(
                f"nginx's workers ({NGINX_USER}) are not in {site.user}'s group on this host, so "
                f"they cannot reach the gunicorn socket (srwxrwx---). As root: usermod -aG "
                f"{site.user} {NGINX_USER}, then restart nginx."
            )
        if not remote.ok(conn, f"{SUPERVISORCTL} status {NGINX_PROGRAM}"):
            raise DeployError(
                f"{conn.host} has no systemd, and {conn.user} cannot reach the Superlists "
                f"supervisord at {SUPERVISOR_SOCKET} (or it does not run nginx). As root, start "
                f"supervisord with deploy_tools/templates/supervisord-host.conf as "
                f"deploy_tools/provisioning_notes.md explains (the staging rehearsal does it with "
                f"python -m rigs.staging_host up)."
            )

    def install(self, conn, site, live, service_changed):
        """Link the site's files where root's nginx and supervisord include them."""
        p = site.paths
        self.link_nginx(conn, site)
        link = host_include(site.user, p.sitename, "supervisor")
        remote.run(conn, f"ln -sfn {q(self.service_file(p))} {q(link)}")
        # supervisord reads our program file through its [include]; `update` restarts the
        # program when its file changed (a program not started yet is added by the reload step).
        if live and service_changed:
            remote.run(conn, f"{SUPERVISORCTL} update {site.service}")

    def link_nginx(self, conn, site):
        """Link the site's nginx file where root's nginx includes it."""
        link = host_include(site.user, site.paths.sitename, "nginx")
        remote.run(conn, f"ln -sfn {q(site.paths.nginx_conf)} {q(link)}")

    def reload_nginx(self, conn):
        """HUP the host's nginx; return the error it logged if it refused its configuration."""
        # The deploy user cannot run `nginx -t` here (it needs root for the pid file and port
        # 80): nginx_reload.py waits for the master's answer instead.
        hup = f"{SUPERVISORCTL} signal HUP {NGINX_PROGRAM}"
        script = remote.script(
            "nginx_reload.py", NGINX_ERROR_LOG, NGINX_PID, hup, "--timeout", NGINX_RELOAD_TIMEOUT
        )
        result = remote.run(conn, script, warn=True)
        if result.ok:
            return ""
        # A Python that cannot run the script says why on stderr (its last line).
        said = result.stdout.strip() or (result.stderr.strip().splitlines() or [""])[-1]
        return said or f"exit status {result.exited}"

    def remove_nginx_link(self, conn, site):
        link = host_include(site.user, site.paths.sitename, "nginx")
        remote.run(conn, f"rm -f {q(link)}")

    def pid_command(self, service):
        return f"{SUPERVISORCTL} pid {service}"

    def start_command(self, service):
        # `update` adds a program supervisord has not read yet, and starts it.
        return f"{{ {SUPERVISORCTL} update {service}; {SUPERVISORCTL} start {service}; }}"

    def restart_command(self, service):
        return f"{SUPERVISORCTL} restart {service}"


MANAGERS = {manager.name: manager for manager in (Systemd(), Supervisor())}
