"""The scale-out rehearsal: staging as production serves it, over HTTPS from a local CA.

    python -m rigs.scale_out [--keep-up]

As root on Debian, under the staging-host lock. Brings up the staging host (its local CA
signs the certificate for the staging names), deploys this commit with --tls-cert/--tls-key
(DJANGO_SECURE_HTTPS on), and checks, each as a phase: http redirects to https, HSTS and
Secure cookies, `check --deploy` with no warning left; the full FT suite through https with a
browser that trusts the CA (nothing told to ignore certificate errors; POP3S checked against
the same CA); the redirect loop a site shows when nginx does not pass the scheme header.
It prints each phase's time and one summary line (see SUMMARY), and exits non-zero if a check
failed. Several app hosts, the PostgreSQL host and the balancer are not built yet: their
fields in the summary say `not-run` (see README "When one server isn't enough").
"""

import http.client
import ssl
import subprocess
import sys

from rigs import REPO, staging_host
from rigs.processes import alive, descendants, wait_until
from rigs.rehearsal import (
    BIN,
    Rehearsal,
    RehearsalFailed,
    parse_arguments,
    run_steps,
)

ADDRESS = staging_host.ADDRESS
SUMMARY = (
    "scale-out: app-hosts={app_hosts} database={database} tls={tls} fts={fts} "
    "rolling-deploy-failed={rolling} host-down-failed={host_down} lost-items={lost}"
)
SCHEME_HEADER = "proxy_set_header X-Forwarded-Proto $scheme;"


class ScaleOut(Rehearsal):
    """The scale-out phases; the staging host's own steps are the single-host rehearsal's."""

    def __init__(self, state):
        super().__init__(state)
        self.summary = {
            "app_hosts": 1,
            "database": "sqlite",
            "tls": "no",
            "fts": "not-run",
            "rolling": "not-run",
            "host_down": "not-run",
            "lost": "not-run",
        }

    @property
    def tls(self):
        return self.state / "tls"

    def tls_options(self):
        return ["--tls-cert", self.tls / "staging.crt", "--tls-key", self.tls / "staging.key"]

    def ask(self, method, path, port=443, headers=None):
        """(status, headers) of one request to the staging address, certificate verified."""
        if port == 443:
            context = ssl.create_default_context(cafile=self.tls / "ca.crt")
            connection = http.client.HTTPSConnection(ADDRESS, port, timeout=10, context=context)
        else:
            connection = http.client.HTTPConnection(ADDRESS, port, timeout=10)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            response.read()
            return response.status, response.headers
        finally:
            connection.close()

    # --- the phases ---------------------------------------------------------------------

    def host_up(self):
        super().host_up()
        self.env["STAGING_SERVER"] = f"https://{ADDRESS}"
        # The FT process's own requests (urllib, the preflight) trust the CA the way the
        # browser does: through a bundle of the system CAs plus the staging CA.
        self.env["SSL_CERT_FILE"] = str(self.tls / "ca-bundle.pem")

    def deploy(self):
        self.fab("provision", "--listen-address", ADDRESS, *self.tls_options())
        self.fab("deploy", "--staging", "--listen-address", ADDRESS, *self.tls_options())

    def https_as_production(self):
        """http -> https, HSTS, Secure cookies, and `check --deploy` with no warning left."""
        status, headers = self.ask("GET", "/lists/x/?a=1", port=80)
        if status != 301 or headers["Location"] != f"https://{ADDRESS}/lists/x/?a=1":
            raise RehearsalFailed(f"http:// answered {status} {headers.get('Location')}")
        print(f"http://{ADDRESS}/lists/x/?a=1 -> {status} {headers['Location']}")
        status, headers = self.ask("GET", "/")
        hsts = headers.get("Strict-Transport-Security", "")
        cookies = headers.get_all("Set-Cookie") or []
        insecure = [c.split("=")[0] for c in cookies if "; secure" not in c.lower()]
        if status != 200 or "max-age=31536000" not in hsts or not cookies or insecure:
            raise RehearsalFailed(
                f"https home page: {status}, HSTS {hsts!r}, cookies without Secure {insecure} "
                f"of {len(cookies)}"
            )
        print(f"https home page 200, certificate verified; HSTS {hsts!r}")
        print(f"Cookies set, every one Secure: {', '.join(c.split('=')[0] for c in cookies)}")
        output = self.fab("manage", "check --deploy --fail-level WARNING")
        if "no issues (0 silenced)" not in output:
            raise RehearsalFailed(f"check --deploy left something to excuse:\n{output}")

    def functional_tests(self):
        self.summary["fts"] = "failed"
        super().functional_tests()
        self.summary["fts"] = "passed"
        self.summary["tls"] = "yes"

    def scheme_header_dropped(self):
        """Without X-Forwarded-Proto the site redirects https to itself: a loop, caught."""
        conf = self.home() / "sites" / ADDRESS / "nginx.conf"
        good = conf.read_text()
        if SCHEME_HEADER not in good:
            raise RehearsalFailed(f"{conf} has no line {SCHEME_HEADER!r}")
        conf.write_text(good.replace(SCHEME_HEADER, f"# dropped by the rehearsal: {SCHEME_HEADER}"))
        try:
            self.reload_nginx()
            status, headers = self.ask("GET", "/")
            location = headers.get("Location")
            print(f"https://{ADDRESS}/ without the scheme header: {status} -> {location}")
            if status != 301 or location != f"https://{ADDRESS}/":
                raise RehearsalFailed("no redirect loop without the scheme header")
            check = subprocess.run(
                [BIN / "python", REPO / "deploy_tools" / "smoke_check.py", "https", ADDRESS,
                 "443", ADDRESS, "--timeout", "2"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            print(f"The deploy's health check says ({check.returncode}): {check.stdout.strip()}")
            if check.returncode == 0 or "loop" not in check.stdout:
                raise RehearsalFailed("the deploy's health check let the redirect loop pass")
        finally:
            conf.write_text(good)
            self.reload_nginx()
        status, _ = self.ask("GET", "/")
        if status != 200:
            raise RehearsalFailed(f"the scheme header restored, https answered {status}")
        print("Scheme header restored: https home page 200 again.")

    def reload_nginx(self):
        """HUP nginx; wait until new workers serve and the old ones (old configuration) left."""
        master = staging_host.read_pid(staging_host.RUN_DIR / "nginx" / "nginx.pid")
        old = set(descendants(master))
        config = self.state / "supervisord.conf"
        self.run("supervisorctl", "-c", config, "signal", "HUP", "nginx", show=False)
        # An old worker still accepts connections for a moment after the new ones start.
        wait_until(
            lambda: set(descendants(master)) - old and not any(alive(pid) for pid in old),
            "nginx's new workers",
            timeout=10,
            failure=lambda: RehearsalFailed(
                "nginx's workers were not replaced within 10 s of a HUP"
            ),
        )

    def print_summary(self):
        print(SUMMARY.format(**self.summary), flush=True)


def main(argv=None):
    args = parse_arguments(__doc__.splitlines()[0], argv, reuse=False)
    rehearsal = ScaleOut(args.state_dir.resolve())
    steps = [
        ("remove the sites of earlier runs", rehearsal.clean_host),
        ("staging host up, its CA and certificate", rehearsal.host_up),
        ("fab provision + first deploy over https", rehearsal.deploy),
        ("https as production serves it", rehearsal.https_as_production),
        ("functional tests through https", rehearsal.functional_tests),
        ("nginx without the scheme header: a redirect loop", rehearsal.scheme_header_dropped),
    ]
    passed = run_steps(rehearsal, steps, args.keep_up, name="scale-out rehearsal")
    rehearsal.print_summary()
    if not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
