"""The scale-out rehearsal: staging shaped like a scaled-out production, over HTTPS.

    python -m rigs.scale_out [--keep-up]

As root on Debian, under the staging-host lock. On loopback addresses that stand for
machines (each deploy user's home stands for its own disk): two app hosts (127.0.0.3, .4),
a PostgreSQL host (.6, provisioned by fab as root) and an nginx load balancer (.5) that
terminates TLS with a certificate from the rehearsal's local CA, which the browser and the
POP3 client trust (nothing is told to ignore certificate errors). It checks, each as a
phase: the single-host https path (http -> https, HSTS, Secure cookies, `check --deploy`
with nothing to excuse, the redirect loop a missing scheme header makes); the database host;
a rolling first deploy; both app hosts serving with their workers and the visitor's address
passed through; the full FT suite through the balancer; a rolling deploy and a rollback
under traffic; an app host going down under traffic; and a per-host state bug (one app host
with a secret key of its own) caught with its cause named. It prints each phase's time and
one summary line (see SUMMARY), and exits non-zero if a check failed.
"""

import collections
import concurrent.futures
import http.client
import os
import pwd
import re
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

from deploy_tools.fabfile import Site
from deploy_tools.sitepaths import HOST_SITES_DIR, SitePaths, host_include
from rigs import REPO, staging_host
from rigs.form_client import FormClient
from rigs.processes import alive, descendants, wait_until
from rigs.rehearsal import (
    BIN,
    FIRST_SCREEN,
    SUPERVISORCTL,
    Rehearsal,
    RehearsalFailed,
    parse_arguments,
    run_steps,
    visible_change,
)
from rigs.traffic import Traffic
from superlists.env import read_dotenv

ADDRESS = staging_host.ADDRESS
BALANCER = staging_host.BALANCER_ADDRESS
# The site as visitors reach it: through the balancer, by its address.
SITE = BALANCER
SITE_URL = f"https://{SITE}"
WEB = staging_host.APP_HOSTS  # deploy user -> address
APP_HOSTS = ",".join(f"{user}@{address}" for user, address in WEB.items())
LB = f"{staging_host.BALANCER_USER}@{BALANCER}"
DATABASE = staging_host.DATABASE_ADDRESS
# A visitor's own address: the rehearsal's requests leave from it, the app hosts must log it.
VISITOR = "127.0.0.9"
APP_OPTIONS = ("--sitename", SITE, "--site-url", SITE_URL, "--behind", BALANCER)
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
            "app_hosts": len(WEB),
            "database": "not-run",
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
        # The FTs: the browser at the balancer, the management commands on an app host.
        self.env["STAGING_SERVER"] = SITE_URL
        # Both app hosts: the commands run on the first, each one's logs are read.
        self.env["STAGING_SSH_HOST"] = APP_HOSTS
        # fab reaches every host with the rehearsal's key (the default user is the app host's).
        self.env["DEPLOY_SSH_KEY"] = self.env["STAGING_SSH_KEY"]
        # The FT process's own requests (urllib, the preflight) and this one's (the traffic)
        # trust the CA the way the browser does: a bundle of the system CAs and the staging CA.
        self.env["SSL_CERT_FILE"] = str(self.tls / "ca-bundle.pem")
        os.environ["SSL_CERT_FILE"] = self.env["SSL_CERT_FILE"]

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

    # --- several app hosts, a database host, a balancer ------------------------------------

    def fab_on(self, hosts, *args, expect_failure=False, show=True, cwd=REPO):
        """fab on other hosts than the staging host's, e.g. both app hosts."""
        return self.run(
            BIN / "fab", "-H", hosts, *args,
            expect_failure=expect_failure, show=show, cwd=cwd,
        )  # fmt: skip

    def app_home(self, user):
        return Path(pwd.getpwnam(user).pw_dir) / "sites" / SITE

    def clean_scale_out(self):
        """The app hosts' and balancer's sites and the database cluster of earlier runs."""
        for user in staging_host.DEPLOY_USERS:
            with_sites = Path(pwd.getpwnam(user).pw_dir) / "sites" if _exists(user) else None
            if with_sites and with_sites.is_dir():
                shutil.rmtree(with_sites, ignore_errors=True)
            for link in (Path(HOST_SITES_DIR) / user).glob("*.conf"):
                link.unlink()
        drop_database_clusters()

    def host_down(self):
        super().host_down()
        drop_database_clusters()

    def database_host(self):
        """fab provisions PostgreSQL on its own host; the app hosts get DATABASE_URL."""
        self.fab_on(
            f"root@{DATABASE}", "provision-database", "--sitename", SITE,
            "--listen-address", DATABASE, "--app-hosts", APP_HOSTS,
            # Loopback connections all come from 127.0.0.1, whatever address they reach.
            "--clients", "127.0.0.1",
        )  # fmt: skip
        for user in WEB:
            url = self.dotenv(user).get("DATABASE_URL", "")
            if not url.startswith("postgres://") or f"@{DATABASE}:" not in url:
                raise RehearsalFailed(f"{user}'s .env has no DATABASE_URL on {DATABASE}: {url!r}")
        print(f"Both app hosts' .env: DATABASE_URL=postgres://…@{DATABASE}:…")
        self.summary["database"] = "postgresql"

    def dotenv(self, user):
        return read_dotenv(self.app_home(user) / ".env")

    def first_rolling_deploy(self):
        """The balancer, then both app hosts provisioned and deployed one at a time."""
        tls = [str(option) for option in self.tls_options()]
        self.fab_on(
            LB, "provision-balancer", "--sitename", SITE, "--listen-address", BALANCER,
            "--app-hosts", ",".join(WEB.values()), *tls,
        )  # fmt: skip
        self.fab_on(APP_HOSTS, "provision", *APP_OPTIONS)
        output = self.deploy_app_hosts()
        # The first app host migrates the shared database; the second finds nothing to do.
        migrating = output.count("will apply ")
        if migrating != 1:
            raise RehearsalFailed(f"the deploy planned migrations on {migrating} app hosts, not 1")
        keys = {user: self.dotenv(user).get("DJANGO_SECRET_KEY") for user in WEB}
        if len(set(keys.values())) != 1 or None in keys.values():
            raise RehearsalFailed("the app hosts' DJANGO_SECRET_KEY differ (or one is missing)")
        print("One DJANGO_SECRET_KEY, the same in both app hosts' .env.")

    def deploy_app_hosts(self, cwd=REPO, show=True):
        return self.fab_on(
            APP_HOSTS, "deploy", "--staging", *APP_OPTIONS, "--balancer", LB,
            cwd=cwd, show=show,
        )  # fmt: skip

    def ask_as_visitor(self, path="/"):
        """One https request through the balancer, leaving from the visitor's own address."""
        context = ssl.create_default_context(cafile=self.tls / "ca.crt")
        connection = http.client.HTTPSConnection(
            SITE, 443, timeout=10, context=context, source_address=(VISITOR, 0)
        )
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            return response.status, response.headers
        finally:
            connection.close()

    def both_hosts_serve(self):
        """Requests through the balancer reach both app hosts and several workers on each."""
        served = collections.defaultdict(set)

        def ask(_):
            status, headers = self.ask_as_visitor()
            if status != 200:
                raise RehearsalFailed(f"https://{SITE}/ through the balancer answered {status}")
            return headers["X-Served-By"].rpartition(" pid ")

        # Eight at once, as visitors come: one at a time, one idle worker may take them all.
        asked = 0
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            while asked < 400 and (
                sorted(served) != sorted(WEB.values()) or any(len(p) < 2 for p in served.values())
            ):
                for host, _, pid in pool.map(ask, range(40)):
                    served[host].add(pid)
                asked += 40
        for host, pids in sorted(served.items()):
            print(f"  {host}: workers {', '.join(sorted(pids))}")
        if sorted(served) != sorted(WEB.values()) or any(len(p) < 2 for p in served.values()):
            raise RehearsalFailed(f"{asked} requests were served by {dict(served)}")
        # The visitor's address, as the app hosts' nginx logged it (nginx writes on its own time).
        for user in WEB:
            log = self.app_home(user) / "logs" / "nginx-access.log"
            wait_until(
                lambda log=log: f"{VISITOR} " in log.read_text(),
                f"{VISITOR} in {log}",
                timeout=5,
                failure=lambda user=user: RehearsalFailed(
                    f"{user}'s nginx access log never shows {VISITOR}"
                ),
            )
        print(f"{asked} requests from {VISITOR}: both app hosts logged it, not the balancer.")

    def fts_through_balancer(self):
        """The full FT suite, its browser at the balancer, its commands on an app host."""
        self.summary["fts"] = "failed"
        self.functional_tests()
        self.summary["fts"] = "passed"
        self.summary["tls"] = "yes"

    def live_releases(self):
        return tuple(os.readlink(self.app_home(user) / "source") for user in WEB)

    def traffic(self, what, command, watch=None):
        """command() under 8 clients through the balancer: (failed answers, lost items)."""
        with Traffic(SITE_URL, clients=8, watch=watch or self.live_releases) as traffic:
            command()
        report, _ = traffic.report()
        print(f"Traffic during {what}: {report}")
        return [answer for answer in traffic.answers if not answer.ok], len(traffic.lost_items())

    def rolling_deploy_under_traffic(self):
        """A code change deployed host by host, each out of the balancer while it switches."""
        before = self.live_releases()
        with self.scratch_clone("Scratch: deployed host by host", visible_change) as clone:
            output = []
            failed, lost = self.traffic(
                "a rolling deploy", lambda: output.append(self.deploy_app_hosts(clone, False))
            )
        said = [line for line in output[0].splitlines() if "balancer" in line]
        print("\n".join(said))
        failed = len(failed)
        self.summary["rolling"], self.summary["lost"] = failed, lost
        after = self.live_releases()
        if len(set(after)) != 1 or set(after) & set(before):
            raise RehearsalFailed(f"live releases {before} -> {after}")
        if failed or lost or len(said) < 4:
            raise RehearsalFailed(f"rolling deploy: {failed} failed, {lost} lost")

    def rollback_under_traffic(self):
        before = self.live_releases()
        failed, lost = self.traffic(
            "a rolling rollback",
            lambda: self.fab_on(APP_HOSTS, "rollback", "--sitename", SITE, "--balancer", LB,
                                show=False),
        )  # fmt: skip
        failed = len(failed)
        self.summary["lost"] += lost
        self.summary["rolling"] += failed
        after = self.live_releases()
        if after == before or len(set(after)) != 1 or failed or lost:
            raise RehearsalFailed(f"rollback: {before} -> {after}, {failed} failed, {lost} lost")

    def app_host_down(self):
        """web2 goes down mid-traffic (stops listening, gunicorn stops); the balancer fails over."""
        user, address = list(WEB.items())[-1]
        program = app_program(user)
        link = Path(host_include(user, SITE, "nginx"))
        target = os.readlink(link)

        went_down = []

        def down_and_up():
            time.sleep(2)
            started = time.monotonic()
            went_down.append(started)
            link.unlink()  # its nginx stops listening on its address
            self.reload_nginx()
            self.run(*SUPERVISORCTL.split(), "stop", program, show=False)
            print(f"  {address} down ({time.monotonic() - started:.1f} s to stop)", flush=True)
            try:
                http.client.HTTPConnection(address, 80, timeout=2).connect()
                raise RehearsalFailed(f"{address}:80 still accepts connections")
            except ConnectionRefusedError:
                pass
            time.sleep(4)
            link.symlink_to(target)
            self.run(*SUPERVISORCTL.split(), "start", program, show=False)
            self.reload_nginx()
            print(f"  {address} back", flush=True)
            time.sleep(2)

        failed, lost = self.traffic(
            f"{address} going down and coming back", down_and_up, watch=link.exists
        )
        self.summary["host_down"] = len(failed)
        self.summary["lost"] += lost
        # A POST sent to web2 in the instant its listener closed is reset unanswered; the
        # balancer never sends a POST twice (it might have been saved), so the visitor gets
        # the 502 and sends it again. Anything else (a GET not failed over, a 502 later) fails.
        unplanned = [
            answer for answer in failed
            if not (answer.what == "add an item" and answer.status == 502
                    and abs(answer.started - went_down[0]) < 1.5)
        ]  # fmt: skip
        if failed:
            print(
                f"{len(failed)} POST(s) in flight to {address} as it stopped answered 502 (the "
                f"balancer resends no POST); every read failed over; nothing acknowledged lost."
            )
        if unplanned or lost:
            raise RehearsalFailed(f"{address} down: failed {unplanned}, {lost} lost")

    def balancer_error_pages(self):
        """The balancer's own 413 and 502 (no app host answers) are the site's pages."""
        client = FormClient(SITE_URL)
        client.get("/")
        status, _, page = client.post("/lists/new", {"text": "x" * 2**21})
        if status != 413 or "That was too much" not in page:
            raise RehearsalFailed(f"a 2 MB POST through the balancer: {status}\n{page[:300]}")
        links = {Path(host_include(user, SITE, "nginx")): None for user in WEB}
        for link in links:
            links[link] = os.readlink(link)
            link.unlink()
        self.reload_nginx()
        try:
            status, _, page = FormClient(SITE_URL).get("/")
        finally:
            for link, target in links.items():
                link.symlink_to(target)
            self.reload_nginx()
        if status != 502 or "Back in a minute" not in page:
            raise RehearsalFailed(f"no app host answering: {status}, not the page:\n{page[:300]}")
        print("Through the balancer: a 2 MB POST 413 and, with no app host, 502: the site's pages.")

    def per_host_state_bug(self):
        """web2 deployed alone gets its own secret key: the FTs fail, the cause is named."""
        user, address = list(WEB.items())[-1]
        env = self.app_home(user) / ".env"
        text = env.read_text()
        own = re.sub(
            r"(?m)^DJANGO_SECRET_KEY=.*$", "DJANGO_SECRET_KEY=its-own-key-" + "x" * 40, text
        )
        Path(os.path.realpath(env)).write_text(own)
        self.run(*SUPERVISORCTL.split(), "restart", app_program(user), show=False)
        print(f"{address} now runs with a DJANGO_SECRET_KEY of its own.")
        output = self.run(
            BIN / "python", "manage.py", "test", "functional_tests.test_my_lists",
            expect_failure=True, show=False,
        )  # fmt: skip
        lines = output.splitlines()
        print("The FT run, its first screen:\n" + "\n".join(lines[:FIRST_SCREEN]))
        if "are not one site" not in "\n".join(lines[:FIRST_SCREEN]):
            raise RehearsalFailed("the FT run's first screen does not name the per-host key")
        said = self.fab_on(APP_HOSTS, "status", "--sitename", SITE, expect_failure=True,
                           show=False)  # fmt: skip
        named = [line for line in said.splitlines() if "another DJANGO_SECRET_KEY" in line]
        print("fab status on both app hosts says:\n" + "\n".join(named))
        if not named:
            raise RehearsalFailed(f"fab status did not name the differing key:\n{said[-2000:]}")
        self.deploy_app_hosts(show=False)
        self.fab_on(APP_HOSTS, "status", "--sitename", SITE, show=False)
        print("fab deploy on both gave web2 the site's key again; fab status agrees.")

    def new_host_deployed_alone(self):
        """A new app host deployed alone would make a key of its own: refused, saying why."""
        user, address = list(WEB.items())[-1]
        env = Path(os.path.realpath(self.app_home(user) / ".env"))
        kept = env.read_text()
        # As a new host's .env is: DATABASE_URL from provision-database, no key yet.
        env.write_text(re.sub(r"(?m)^DJANGO_SECRET_KEY=.*\n", "", kept))
        try:
            said = self.fab_on(
                f"{user}@{address}", "deploy", "--staging", *APP_OPTIONS, "--balancer", LB,
                expect_failure=True, show=False,
            )  # fmt: skip
        finally:
            env.write_text(kept)
        refusal = [line for line in said.splitlines() if "has no DJANGO_SECRET_KEY yet" in line]
        print("\n".join(refusal) or said[-2000:])
        if not refusal or "Nothing changed" not in refusal[0]:
            raise RehearsalFailed("a new app host deployed alone was not refused")

    def print_summary(self):
        print(SUMMARY.format(**self.summary), flush=True)


def app_program(user):
    """The supervisor program of an app host's gunicorn, named as fab deploy --behind names it."""
    home = pwd.getpwnam(user).pw_dir
    return Site(SitePaths(SITE, home), user, "supervisor", behind=BALANCER).service


def drop_database_clusters():
    """Stop and remove the database host's PostgreSQL cluster (Debian's own are left alone)."""
    if not shutil.which("pg_lsclusters"):
        return
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True)
    for line in clusters.stdout.splitlines():
        version, name = line.split()[:2]
        if name == "superlists":
            subprocess.run(["pg_dropcluster", "--stop", version, name], check=True)
            print(f"Dropped the database host's PostgreSQL cluster {version}/{name}.")


def _exists(user):
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def main(argv=None):
    args = parse_arguments(__doc__.splitlines()[0], argv, reuse=False)
    rehearsal = ScaleOut(args.state_dir.resolve())
    steps = [
        ("remove the sites of earlier runs", rehearsal.clean_host),
        ("staging host up, its CA and certificate", rehearsal.host_up),
        ("fab provision + first deploy over https", rehearsal.deploy),
        ("https as production serves it", rehearsal.https_as_production),
        ("nginx without the scheme header: a redirect loop", rehearsal.scheme_header_dropped),
        ("remove the app hosts, balancer and database of earlier runs", rehearsal.clean_scale_out),
        ("database host: PostgreSQL provisioned by fab", rehearsal.database_host),
        (
            "balancer and app hosts provisioned, first rolling deploy",
            rehearsal.first_rolling_deploy,
        ),
        ("both app hosts serve, the visitor's address passed on", rehearsal.both_hosts_serve),
        ("functional tests through the balancer", rehearsal.fts_through_balancer),
        ("a rolling deploy under traffic", rehearsal.rolling_deploy_under_traffic),
        ("a rolling rollback under traffic", rehearsal.rollback_under_traffic),
        ("an app host down under traffic", rehearsal.app_host_down),
        ("the balancer's own 413 and 502 are the site's pages", rehearsal.balancer_error_pages),
        ("a per-host state bug, its cause named", rehearsal.per_host_state_bug),
        ("a new app host deployed alone: refused", rehearsal.new_host_deployed_alone),
    ]
    passed = run_steps(rehearsal, steps, args.keep_up, name="scale-out rehearsal")
    rehearsal.print_summary()
    if not passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
