"""The load balancer in front of several app hosts: its nginx site and its upstream list.

`fab provision-balancer` writes both; `fab deploy --balancer` and `fab rollback --balancer`
take each app host out (`down` in the upstream list) before switching it and put it back
once it answers again: a rolling deploy, one host at a time, no request sent to a host
that is switching.
"""

import re
from pathlib import PurePosixPath

from deploy_tools import remote
from deploy_tools.errors import DeployError

# A host that fails once is skipped for this long, then tried again (passive health check).
FAIL_TIMEOUT = 5
_SERVER = re.compile(r"^\s*server\s+(\S+)(.*);\s*$")


def parse_app_hosts(text):
    """'127.0.0.3,127.0.0.4:8080' -> ['127.0.0.3:80', '127.0.0.4:8080'], checked."""
    hosts = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "80")
        if not re.fullmatch(r"[A-Za-z0-9.-]+", host) or not port.isdigit():
            raise DeployError(
                f"--app-hosts: {item!r} is not an app host address (host or host:port, "
                f"e.g. 10.0.0.3 or web1.internal:80)."
            )
        hosts.append(f"{host}:{port}")
    if not hosts:
        raise DeployError("--app-hosts: name at least one app host, e.g. 10.0.0.3,10.0.0.4.")
    return hosts


def upstream_text(hosts, down=()):
    """The upstream file: one `server` line per app host, `down` for those taken out."""
    lines = ["# The app hosts behind the balancer, written by fab (provision-balancer, deploy).\n"]
    for host in hosts:
        state = " down" if host in down else ""
        lines.append(f"server {host} max_fails=1 fail_timeout={FAIL_TIMEOUT}s{state};\n")
    return "".join(lines)


def parse_upstream(text):
    """(hosts, down) from an upstream file."""
    hosts, down = [], set()
    for line in text.splitlines():
        match = _SERVER.match(line)
        if match:
            hosts.append(match.group(1))
            if re.search(r"\bdown\b", match.group(2)):
                down.add(match.group(1))
    return hosts, down


def upstream_file(paths):
    return PurePosixPath(paths.root) / "upstream.conf"


def error_pages(paths):
    """The balancer's copy of deploy_tools/error_pages (it has no release of its own)."""
    return PurePosixPath(paths.root) / "error_pages"


def render_site(paths, hosts_allowed, listen_address, tls_cert, tls_key, render):
    """The balancer's nginx site: https with the certificate, http redirecting to it."""
    name = "balancer_" + re.sub(r"[^A-Za-z0-9_]", "_", paths.sitename)
    address = f"{listen_address}:" if listen_address else ""
    tls_lines = redirect_block = ""
    listen = f"{address}80"
    if tls_cert:
        listen = f"{address}443 ssl"
        tls_lines = f"    ssl_certificate {tls_cert};\n    ssl_certificate_key {tls_key};\n"
        redirect_block = (
            f"server {{\n    listen {address}80;\n    server_name {paths.sitename};\n"
            f"    server_tokens off;\n    return 301 https://{paths.sitename}$request_uri;\n}}\n"
        )
    # From its own address, so the app hosts can tell the balancer from anyone else.
    bind_line = f"        proxy_bind {listen_address};\n" if listen_address else ""
    return render(
        "nginx-balancer.conf",
        sitename=paths.sitename,
        upstream=name,
        upstream_file=upstream_file(paths),
        redirect_block=redirect_block,
        listen=listen,
        tls_lines=tls_lines,
        logs=paths.logs,
        known_hosts="|".join(re.escape(host) for host in hosts_allowed),
        bind_line=bind_line,
        error_pages=error_pages(paths),
    )


def read_upstream(conn, paths):
    text = remote.read_remote(conn, upstream_file(paths))
    if not text:
        raise DeployError(
            f"{conn.host} has no balancer for {paths.sitename} ({upstream_file(paths)} is "
            f"missing): run fab -H {conn.user}@{conn.host} provision-balancer first."
        )
    return parse_upstream(text)


def set_down(conn, paths, services, host, down):
    """Mark one app host down (or up again) in the balancer and reload its nginx."""
    hosts, marked = read_upstream(conn, paths)
    if host not in hosts:
        raise DeployError(
            f"The balancer on {conn.host} does not list {host} (it lists "
            f"{', '.join(hosts)}): provision-balancer --app-hosts must name every app host "
            f"as deploy --listen-address/--port serve it."
        )
    wanted = (marked | {host}) if down else (marked - {host})
    if wanted == marked:
        return False
    if down and not set(hosts) - wanted:
        raise DeployError(
            f"Taking {host} out would leave the balancer on {conn.host} with no app host "
            f"({', '.join(sorted(marked))} already out): bring one back first."
        )
    remote.write_file(conn, upstream_file(paths), upstream_text(hosts, wanted))
    refusal = services.reload_nginx(conn)
    if refusal:
        remote.write_file(conn, upstream_file(paths), upstream_text(hosts, marked))
        services.reload_nginx(conn)
        raise DeployError(f"nginx on the balancer refused the new upstream list: {refusal}")
    return True
