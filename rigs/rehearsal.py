"""The staging rehearsal: a real staging host on 127.0.0.2, deployed to and tested, then gone.

    python -m rigs.rehearsal [--keep-up] [--reuse]

As root on Debian: removes the sites earlier runs left on the host (unless --reuse), brings
up the staging host (rigs/staging_host.py), provisions and deploys this commit with
`fab` (staging flag on), deploys again to show a no-change redeploy, runs the functional tests
with STAGING_SERVER set, deploys a second site *without* the staging flag on another port,
starts a list there with a real browser, and shows that FT runs aimed at it in every spelling
are refused with no row changed anywhere, that a staging flag typed in its shell is refused,
and that a server without EMAIL_PASSWORD gives the friendly mail error; times a login email
from request to POP3, shows an FT run refusing a changed host key, and stops everything it
started. It prints the time of each phase and a tally (phases after a failure: not run), and
exits non-zero if any check failed.
"""

import argparse
import contextlib
import html
import http.client
import json
import os
import pwd
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from deploy_tools import serverlogs
from deploy_tools.sitepaths import SUPERVISOR_SOCKET, SitePaths
from functional_tests import diagnosis
from functional_tests.browsers import start_browser
from functional_tests.server import StagingServer
from functional_tests.waits import wait_for
from rigs import REPO, staging_host
from rigs.form_client import FormClient
from rigs.processes import wait_until
from rigs.traffic import Traffic

ADDRESS = staging_host.ADDRESS
SECOND_SITE = "superlists-prod"
SECOND_PORT = 8080
BROKEN_SITE = "superlists-broken-tls"
PRODUCTION_DATA = "Production data, keep me"
# Every way of aiming an FT run at the production site (or of mixing it with staging's name):
# (STAGING_SERVER, STAGING_SITENAME). The first is the browser on staging, the commands on
# production; the second is the mistake that once wrote 4 -> 13 lists into production.
PRODUCTION_SPELLINGS = (
    (ADDRESS, SECOND_SITE),
    (f"{ADDRESS}:{SECOND_PORT}", ""),
    (f"{ADDRESS}:{SECOND_PORT}", SECOND_SITE),
    (f"{ADDRESS}:{SECOND_PORT}", ADDRESS),
    (f"http://{ADDRESS}:{SECOND_PORT}/", ""),
    (f"http://{ADDRESS}:{SECOND_PORT}", ADDRESS),
)
BIN = Path(sys.executable).parent
SUPERVISORCTL = f"supervisorctl -s unix://{SUPERVISOR_SOCKET}"
# Lines of a failed command's output a developer sees without scrolling: the cause must be there.
FIRST_SCREEN = 30
CHANGE_MARK = "<!-- scratch release: deployed under load -->"
NOTE_FIELD = "    note = models.TextField(null=True, blank=True)\n"


def visible_change(clone):
    """A scratch change every page shows: CHANGE_MARK before </body>."""
    base = clone / "superlists" / "jinja2" / "base.html"
    base.write_text(base.read_text().replace("</body>", f"{CHANGE_MARK}</body>"))


class RehearsalFailed(Exception):
    """A rehearsal check did not hold; the message says which and what was seen."""


class Rehearsal:
    def __init__(self, state):
        self.state = state
        self.timings = []
        self.env = dict(os.environ)

    @contextlib.contextmanager
    def phase(self, title):
        started = time.monotonic()
        print(f"\n=== {title}", flush=True)
        try:
            yield
        finally:
            self.timings.append((title, time.monotonic() - started))
            print(f"=== {title}: {self.timings[-1][1]:.1f} s", flush=True)

    def run(self, *command, env=None, expect_failure=False, show=True, cwd=REPO):
        """Run a command, showing its output unless told not to; the output is returned."""
        result = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env=env or self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        if show:
            print(result.stdout, end="", flush=True)
        if expect_failure != bool(result.returncode):
            outcome = "succeeded" if expect_failure else f"failed ({result.returncode})"
            said = "" if show else f", saying:\n{result.stdout[-3000:]}"
            raise RehearsalFailed(f"{' '.join(map(str, command[:4]))} … {outcome}{said}")
        return result.stdout

    def expect_ft_refusal(self, env, sentence, test="functional_tests.test_not_found"):
        """Run one quick FT with env; it must fail, saying `sentence`."""
        output = self.run(
            BIN / "python", "manage.py", "test", test,
            env=env, expect_failure=True, show=False,
        )  # fmt: skip
        # Show only the refusal: the test run's own FAILED line is the expected outcome here.
        refusals = [line for line in output.splitlines() if sentence in line]
        if not refusals:
            raise RehearsalFailed(f"the FT run did not refuse with {sentence!r}:\n{output}")
        print(f"The FT run refused, as it should: {refusals[0]}")

    def fab(self, *args, env=None, cwd=REPO, expect_failure=False, show=True):
        """The README's fab command, run in cwd (this repository, or a scratch clone)."""
        host = f"{self.env['STAGING_SSH_USER']}@{ADDRESS}"
        return self.run(
            BIN / "fab", "-H", host, *args,
            env=env, cwd=cwd, expect_failure=expect_failure, show=show,
        )  # fmt: skip

    def home(self):
        return Path(pwd.getpwnam(self.env.get("STAGING_SSH_USER", staging_host.DEPLOY_USER)).pw_dir)

    def row_counts(self, sitename):
        """(lists, items) in a site's database, read directly on the host."""
        database = self.home() / "sites" / sitename / "db.sqlite3"
        with contextlib.closing(sqlite3.connect(database)) as db:
            return tuple(
                db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("lists_list", "lists_item")
            )

    def manage_on(self, sitename, *variables):
        """The command line of a site's manage.py, run on the host as the deploy user."""
        site = self.home() / "sites" / sitename
        return [
            "runuser", "-u", self.env["STAGING_SSH_USER"], "--", "env", *variables,
            site / "source" / ".venv" / "bin" / "python", site / "source" / "manage.py",
        ]  # fmt: skip

    def second_site_env(self):
        """No EMAIL_PASSWORD, as on a careless new production server."""
        return {key: value for key, value in self.env.items() if key != "EMAIL_PASSWORD"}

    def live_release(self):
        """The release the staging site's `source` link points at."""
        return Path(os.readlink(self.home() / "sites" / ADDRESS / "source")).name

    def gunicorn(self, action):
        """supervisorctl start/stop/restart the staging site's gunicorn, as root on the host."""
        service = SitePaths(ADDRESS, str(self.home())).service
        self.run(*SUPERVISORCTL.split(), action, service, show=False)

    def home_page_answers(self):
        """Wait for the staging site's home page to answer 200 (gunicorn may be starting)."""
        wait_until(lambda: FormClient(f"http://{ADDRESS}").get("/")[0] == 200, "the home page")

    @contextlib.contextmanager
    def scratch_clone(self, subject, change):
        """A temporary clone of this working tree with one more commit, made by change(folder)."""
        with tempfile.TemporaryDirectory(prefix="superlists-scratch-") as folder:
            clone = Path(folder) / "superlists"
            subprocess.run(["git", "clone", "-q", REPO, clone], check=True)
            # The working tree as it is, so that uncommitted work is rehearsed too.
            listed = subprocess.run(
                ["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                cwd=REPO, capture_output=True, check=True,
            ).stdout.decode()  # fmt: skip
            for name in filter(None, listed.split("\0")):
                if (REPO / name).is_file():
                    (clone / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO / name, clone / name)
            change(clone)
            git = ["git", "-C", clone, "-c", "user.name=Rehearsal", "-c", "user.email=r@x.test"]
            subprocess.run([*git, "add", "-A"], check=True)
            subprocess.run([*git, "commit", "-q", "-m", subject], check=True)
            yield clone

    def deploy_from(self, clone, expect_failure=False):
        """fab deploy from a scratch clone; its output's first screen is shown as it came."""
        output = self.fab(
            "deploy", "--staging", "--listen-address", ADDRESS,
            cwd=clone, expect_failure=expect_failure, show=not expect_failure,
        )  # fmt: skip
        if expect_failure:
            lines = output.splitlines()
            print("\n".join(lines[:FIRST_SCREEN]))
            if len(lines) > FIRST_SCREEN:
                print(f"[… {len(lines) - FIRST_SCREEN} more lines]")
        return output

    @staticmethod
    def expect_in(output, *sentences, lines=None):
        """Each sentence is in the output (in its first `lines` lines, if given)."""
        shown = "\n".join(output.splitlines()[:lines])
        missing = [sentence for sentence in sentences if sentence not in shown]
        if missing:
            where = f"in its first {lines} lines" if lines else ""
            raise RehearsalFailed(f"the output does not say {missing[0]!r} {where}:\n{output}")

    def under_load(self, what, command):
        """Run command while clients add items and read lists; no failure, no lost item."""
        with Traffic(f"http://{ADDRESS}", clients=8, watch=self.live_release) as traffic:
            command()
        report, ok = traffic.report()
        print(f"Traffic during {what}: {report}")
        if not ok:
            raise RehearsalFailed(f"{what} under load: {report}")

    # --- the phases ---------------------------------------------------------------------

    def clean_host(self):
        """Remove the sites earlier runs left (databases, venvs, static files, releases)."""
        try:
            sites = Path(pwd.getpwnam(staging_host.DEPLOY_USER).pw_dir) / "sites"
        except KeyError:
            print("No deploy user yet: a new host.")
            return
        left = sorted(path.name for path in sites.glob("*")) if sites.is_dir() else []
        shutil.rmtree(sites, ignore_errors=True)
        print(f"Removed {len(left)} site(s) left by earlier runs: {', '.join(left) or 'none'}.")

    def host_up(self):
        values = staging_host.up(self.state, with_browser=True)
        self.env.update({key: str(value) for key, value in values.items()})
        # The staging target for the FTs; the second site is named explicitly where used.
        self.env["STAGING_SERVER"] = ADDRESS

    def deploy(self):
        self.fab("provision", "--listen-address", ADDRESS)
        self.fab("deploy", "--staging", "--listen-address", ADDRESS)

    def redeploy(self):
        self.fab("deploy", "--staging", "--listen-address", ADDRESS)

    def functional_tests(self):
        self.run(BIN / "python", REPO / "bench" / "ft_times.py")

    def settings_not_loaded(self):
        """manage.py that does not load the site's .env: named as such, never 'not staging'."""
        # The scratch-clone mistake, made in the live release: settings.py stops loading the
        # .env. gunicorn keeps the settings it started with; manage.py over SSH loses them.
        settings = self.home() / "sites" / ADDRESS / "source" / "superlists" / "settings.py"
        original = settings.read_text()
        broken = original.replace("\nload_dotenv(DOTENV_FILE)\n", "\n", 1)
        if broken == original:
            raise RehearsalFailed(f"{settings} no longer has `load_dotenv(DOTENV_FILE)` to remove")
        settings.write_text(broken)
        try:
            self.expect_ft_refusal(self.env, "does not run with the site's settings")
        finally:
            settings.write_text(original)

    def migration_not_applied(self):
        """Migrations missing on the server: the preflight names them before any test."""
        manage = self.manage_on(ADDRESS)
        self.run(*manage, "migrate", "accounts", "0001", "-v", "0", show=False)
        try:
            self.expect_ft_refusal(self.env, "not applied to the database: accounts.0002")
        finally:
            self.run(*manage, "migrate", "-v", "0", show=False)

    def second_site(self):
        site = ["--sitename", SECOND_SITE, "--port", SECOND_PORT, "--listen-address", ADDRESS]
        url = ["--site-url", f"http://{ADDRESS}:{SECOND_PORT}"]
        env = self.second_site_env()
        self.fab("provision", *site, *url, env=env)
        self.fab("deploy", *site, *url, env=env)

    def browser_post_on_another_port(self):
        """A real browser starts a list on the second site, on a port that is not 80."""
        # Its POST carries an Origin with the port, which Django's CSRF check compares with
        # the Host nginx passes on: `$host` (no port) made every such POST a 403.
        browser = start_browser()
        try:
            browser.get(f"http://{ADDRESS}:{SECOND_PORT}/")
            box = browser.find_element(By.CSS_SELECTOR, "#id_text")
            box.send_keys(PRODUCTION_DATA, Keys.ENTER)
            try:
                wait_for(
                    lambda: PRODUCTION_DATA in browser.find_element(By.CSS_SELECTOR, "table").text,
                    f"the new list's row {PRODUCTION_DATA!r}",
                )
            except AssertionError:
                headings = browser.find_elements(By.TAG_NAME, "h1")
                said = headings[0].text if headings else browser.title
                raise RehearsalFailed(
                    f"Chromium's POST on port {SECOND_PORT} made no list: it got {said!r} at "
                    f"{browser.current_url}. ('Form expired' is Django's CSRF check refusing "
                    f"the POST's Origin: does nginx pass the port in Host, `$http_host`?)"
                ) from None
            self.production_list = browser.current_url
        finally:
            browser.quit()
        print(f"Chromium started a list on {SECOND_SITE}: {self.production_list}")

    def guard_refuses(self):
        """FT runs aimed at the non-staging site in every spelling: refused, no row changed."""
        before = {site: self.row_counts(site) for site in (SECOND_SITE, ADDRESS)}
        not_refused = []
        for target, sitename in PRODUCTION_SPELLINGS:
            spelling = f"STAGING_SERVER={target} STAGING_SITENAME={sitename or '(unset)'}"
            print(f"{spelling}:")
            env = {**self.env, "STAGING_SERVER": target, "STAGING_SITENAME": sitename}
            # A story that writes lists, so that a run not refused shows in the row counts.
            try:
                self.expect_ft_refusal(
                    env, "nothing was changed", "functional_tests.test_simple_list_creation"
                )
            except RehearsalFailed as error:
                print(str(error).splitlines()[0])
                not_refused.append(spelling)
        after = {site: self.row_counts(site) for site in (SECOND_SITE, ADDRESS)}
        for site in before:
            print(f"{site}: (lists, items) {before[site]} before, {after[site]} after")
        if before != after or not_refused:
            raise RehearsalFailed(
                f"FT runs aimed at {SECOND_SITE}: not refused with {not_refused or 'none'}; "
                f"(lists, items) per site {before} before, {after} after"
            )
        status, _, page = FormClient(self.production_list).get("")
        if status != 200 or PRODUCTION_DATA not in html.unescape(page):
            raise RehearsalFailed(f"{SECOND_SITE}'s list is gone after the refused runs")

    def shell_flag_refused(self):
        """`SUPERLISTS_STAGING=1 manage.py reset_staging` on production: refused, rows kept."""
        before = self.row_counts(SECOND_SITE)
        manage = self.manage_on(SECOND_SITE, "SUPERLISTS_STAGING=1")
        # Naming the site rightly (its own id) must not help: only its .env marks staging.
        report = self.run(*manage, "preflight", "--json", show=False).strip().splitlines()[-1]
        own_id = json.loads(report)["site_id"]
        output = self.run(
            *manage, "reset_staging", "--site-id", own_id, expect_failure=True, show=False
        )
        refusal = [line for line in output.splitlines() if "only the .env marks" in line]
        if not refusal or self.row_counts(SECOND_SITE) != before:
            raise RehearsalFailed(f"reset_staging was not refused on {SECOND_SITE}:\n{output}")
        print(f"Refused, rows {before} kept: {refusal[0]}")

    def missing_mail_password(self):
        """A server deployed without EMAIL_PASSWORD: friendly page, the SMTP refusal logged."""
        visitor = FormClient(f"http://{ADDRESS}:{SECOND_PORT}")
        status, headers, _ = visitor.post(
            "/accounts/send_login_email", {"email": "edith@staging.test"}
        )
        _, _, page = visitor.get(headers.get("Location", "/"))
        if status != 302 or "couldn't send your login email" not in html.unescape(page):
            raise RehearsalFailed("no friendly message when the mail server refused")
        logs = self.fab("logs", "--sitename", SECOND_SITE, "--lines", "40")
        if not re.search(r"SMTP\w*(Refused|Error).*53\d", logs):
            raise RehearsalFailed("the SMTP refusal is not in the site's error log")
        print("The visitor saw the friendly message; the log has the 53x refusal.")

    def failure_reports_read_the_server(self):
        """What a failing staging FT reads: nginx's error line, a request's own lines, workers."""
        server = StagingServer(ADDRESS, self.env)
        try:
            self._read_the_server(server)
        finally:
            # An SSH connection left open keeps its sshd alive past the host's teardown.
            server.close()

    def _read_the_server(self, server):
        server.log_mark()  # connect first: what each test pays is the mark alone
        started, clock = time.time(), time.perf_counter()
        mark = server.log_mark()
        mark_seconds = time.perf_counter() - clock
        visitor = FormClient(server.url)
        visitor.get("/static/css/no-such-file.css")
        status, headers, page = visitor.get("/lists/no-such-list/")
        records = server.log_records(started, mark)
        nginx = [
            cause
            for record in records
            for cause in diagnosis._known(record.text, ADDRESS)
            if "no-such-file.css" in cause
        ]
        request_id = headers.get("X-Request-ID", "")
        mine = serverlogs.for_request(records, request_id)
        if not nginx or status != 404 or request_id not in page or not mine:
            shown = "\n".join(line for record in records for line in record.shown())
            raise RehearsalFailed(
                f"a failure report would miss nginx's error line or request {request_id!r}'s "
                f"lines (HTTP {status}); the log window held:\n{shown}"
            )
        workers = {FormClient(server.url).get("/")[1]["X-Served-By"] for _ in range(10)}
        print(f"nginx's error line named: {nginx[0]}")
        print(f"404 page shows request id {request_id}; its log line: {mine[0].lines[0][:100]}")
        print(f"10 home pages served by {len(workers)} worker(s): {', '.join(sorted(workers))}")
        print(f"Marking where the logs end, once per test: {mark_seconds * 1000:.0f} ms")

    def login_email_round_trip(self):
        """Time from asking for a login link on staging to reading it over POP3."""
        server = StagingServer(ADDRESS, self.env)
        times = []
        for attempt in range(5):
            address = server.email_for(f"timing{attempt}")
            visitor = FormClient(server.url)
            started = time.perf_counter()
            status, _, _ = visitor.post("/accounts/send_login_email", {"email": address})
            message = server.wait_for_email(address, "Your login link for Superlists")
            times.append(time.perf_counter() - started)
            if status != 302 or "Use this link to log in:" not in message.body:
                raise RehearsalFailed(f"the login email to {address} was not right: {status}")
        times.sort()
        print(
            f"Login link asked for, then read over POP3S: median {times[2]:.2f} s, "
            f"slowest {times[-1]:.2f} s (5 tries)"
        )

    def secrets_and_trust(self):
        """No usable token in any log, logs and socket private, other Hosts dropped by nginx."""
        server = StagingServer(ADDRESS, self.env)
        address = server.email_for("tokens")
        FormClient(server.url).post("/accounts/send_login_email", {"email": address})
        body = server.wait_for_email(address, "Your login link for Superlists").body
        url = re.search(r"http://\S+/accounts/login\?token=([\w-]+)", body)
        link_checker = http.client.HTTPConnection(ADDRESS, 80, timeout=10)
        link_checker.request("HEAD", url[0].removeprefix(server.url))
        head = link_checker.getresponse()
        site = self.home() / "sites" / ADDRESS
        logs = sorted(path for path in (site / "logs").iterdir() if path.is_file())
        leaked = [path.name for path in logs if url[1] in path.read_text(errors="replace")]
        if leaked or head.status != 405:
            raise RehearsalFailed(f"HEAD answered {head.status}; the token is in {leaked}")
        visitor = FormClient(server.url)
        status, headers, _ = visitor.get(url[0].removeprefix(server.url))
        if status != 302 or "Logged in as" not in visitor.get(headers["Location"])[2]:
            raise RehearsalFailed(f"the link, HEADed first, did not log in: {status}")
        print(f"HEAD {head.status}; the token is in none of {len(logs)} logs; the link logged in")
        # supervisord's own log of gunicorn is root's: the 700 folder keeps it private too.
        mine = [path for path in logs if path.stat().st_uid == (site / "logs").stat().st_uid]
        private = {path.name: oct(path.stat().st_mode & 0o777) for path in [site / "logs", *mine]}
        socket_mode = (site / "gunicorn.sock").stat().st_mode
        if (
            any(int(mode, 8) & 0o077 for mode in private.values())
            or private["logs"] != "0o700"
            or stat.S_IMODE(socket_mode) != 0o770
        ):
            raise RehearsalFailed(f"logs {private}, socket {oct(socket_mode)}: not private")
        print(f"Logs for the site's user only ({len(private)} checked); socket srwxrwx---")
        scanner = http.client.HTTPConnection(ADDRESS, 80, timeout=10)
        scanner.request("GET", "/", headers={"Host": "scanner.example"})
        try:
            answer = scanner.getresponse().status
        except http.client.RemoteDisconnected:
            answer = "no answer (444)"
        seen = [p.name for p in logs if "scanner.example" in p.read_text(errors="replace")]
        if answer != "no answer (444)" or set(seen) - {"nginx-access.log"}:
            raise RehearsalFailed(f"Host: scanner.example got {answer}; it reached {seen}")
        server_header = FormClient(server.url).get("/")[1]["Server"]
        if server_header != "nginx":
            raise RehearsalFailed(f"nginx names its version: Server: {server_header}")
        print(f"Host: scanner.example: {answer}, Django never saw it; Server: {server_header}")

    def fails_closed_without_dotenv(self):
        """The second site's service command, its .env gone: refuses in a sentence, no DEBUG."""
        site = self.home() / "sites" / SECOND_SITE
        program = (site / "supervisor.conf").read_text()
        command = re.search(r"^command=(.*)$", program, re.M)[1]
        environment = re.findall(
            r'(\w+)="([^"]*)"', re.search(r"^environment=(.*)$", program, re.M)[1]
        )
        # The same command and environment supervisord uses, on a socket of its own.
        command = re.sub(r"--bind unix:\S+", f"--bind unix:{site}/failclosed.sock", command)
        # The file the site reads: the live release's own .env (the site's .env links to it).
        dotenv = site / "source" / ".env"
        dotenv.rename(dotenv.with_name(".env.away"))
        try:
            output = self.run(
                "runuser", "-u", self.env["STAGING_SSH_USER"], "--", "timeout", "30", "env",
                *(f"{key}={value}" for key, value in environment), *command.split(),
                "--error-logfile", "-", expect_failure=True, show=False,
            )  # fmt: skip
        finally:
            dotenv.with_name(".env.away").rename(dotenv)
        sentence = [line for line in output.splitlines() if "is not configured" in line]
        if not sentence or "DJANGO_SECRET_KEY is not set" not in sentence[0]:
            raise RehearsalFailed(f"without .env the service did not refuse:\n{output[-2000:]}")
        print(f"Without .env the service refused: {sentence[0][:150]}…")

    def changed_host_key(self):
        """An FT run against a host whose SSH key changed refuses with a sentence."""
        with tempfile.TemporaryDirectory() as folder:
            key = Path(folder) / "other"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
            public = key.with_suffix(".pub").read_text().split()
            known_hosts = Path(folder) / "known_hosts"
            known_hosts.write_text(f"{ADDRESS} {public[0]} {public[1]}\n")
            env = {**self.env, "SUPERLISTS_KNOWN_HOSTS": str(known_hosts)}
            self.expect_ft_refusal(env, "has CHANGED")

    def refused_nginx_configuration(self):
        """A site nginx refuses (its certificate is missing) is undone; the others serve on."""
        output = self.run(
            BIN / "fab", "-H", f"{self.env['STAGING_SSH_USER']}@{ADDRESS}",
            "provision", "--sitename", BROKEN_SITE, "--listen-address", ADDRESS,
            "--port", "8443", "--tls-cert", "/nonexistent/site.pem",
            "--tls-key", "/nonexistent/site.key",
            expect_failure=True, show=False,
        )  # fmt: skip
        refusal = [line for line in output.splitlines() if "nginx refused" in line]
        if not refusal or "/nonexistent/site.pem" not in refusal[0]:
            raise RehearsalFailed(f"fab provision did not report nginx's refusal:\n{output}")
        print(f"Refused, as it should be: {refusal[0][:160]}…")
        home = Path(pwd.getpwnam(self.env["STAGING_SSH_USER"]).pw_dir)
        if (home / "sites" / BROKEN_SITE / "nginx.conf").exists():
            raise RehearsalFailed("the refused nginx configuration was left in place")
        # The host's configuration as a whole is valid again, so any site's next reload works.
        nginx_conf = staging_host.RUN_DIR / "nginx" / "nginx.conf"
        self.run("/usr/sbin/nginx", "-t", "-q", "-c", nginx_conf, show=False)
        status, _, _ = FormClient(f"http://{ADDRESS}").get("/")
        if status != 200:
            raise RehearsalFailed(f"the staging site answered {status} after the refusal")
        shutil.rmtree(home / "sites" / BROKEN_SITE)
        print("The refused file is gone, nginx -t passes, the staging site still answers 200.")

    def failed_build_changes_nothing(self):
        """A release whose collectstatic fails leaves the live one live, even after a restart."""
        live = self.live_release()

        def unreadable_static_file(clone):
            (clone / "superlists" / "static" / "css" / "broken.css").symlink_to("/nonexistent.css")

        subject = "Scratch: a static file collectstatic cannot copy"
        with self.scratch_clone(subject, unreadable_static_file) as clone:
            output = self.deploy_from(clone, expect_failure=True)
        self.expect_in(
            output, "collect static files", "FileNotFoundError", "broken.css",
            f"Nothing changed on the server: {live} is still live.",
            lines=FIRST_SCREEN,
        )  # fmt: skip
        if self.live_release() != live:
            raise RehearsalFailed(f"source moved to {self.live_release()} after a failed build")
        self.gunicorn("restart")
        self.home_page_answers()
        status = self.fab("status", show=False)
        self.expect_in(status, f"workers running {live}", "HTTP 200")
        print(f"source still points at {live}; after a gunicorn restart the workers run it.")

    def failed_health_check_switches_back(self):
        """A release whose home page is a 500 is switched back at once, with the cause shown."""
        live = self.live_release()

        def broken_home_page(clone):
            views = clone / "lists" / "views.py"
            text = views.read_text()
            crash = "    raise RuntimeError('scratch: the home page is broken')\n"
            broken = text.replace("def home_page(request):\n", "def home_page(request):\n" + crash)
            if broken == text:
                raise RehearsalFailed("lists/views.py has no home_page to break")
            views.write_text(broken)

        with self.scratch_clone("Scratch: the home page raises", broken_home_page) as clone:
            output = self.deploy_from(clone, expect_failure=True)
        self.expect_in(
            output, "failed its health check", "HTTP 500 request-id=",
            "RuntimeError: scratch: the home page is broken",
            f"Switched back automatically: {live} is live again",
            lines=FIRST_SCREEN,
        )  # fmt: skip
        if self.live_release() != live:
            raise RehearsalFailed(
                f"source is {self.live_release()}, not {live}, after the switch back"
            )
        self.home_page_answers()

    def deploy_under_load(self):
        """A deploy that changes code, under load: no failed request, no lost item."""
        before = self.live_release()

        with self.scratch_clone("Scratch: a visible change", visible_change) as clone:
            self.under_load("a code-changing deploy", lambda: self.deploy_from(clone))
        self.rolled_back_to = before
        _, _, page = FormClient(f"http://{ADDRESS}").get("/")
        if self.live_release() == before or CHANGE_MARK not in page:
            raise RehearsalFailed("the new release is not what the home page serves")

    def rollback_under_load(self):
        """fab rollback under load, then fab status says what is live."""
        self.under_load("fab rollback", lambda: self.fab("rollback"))
        _, _, page = FormClient(f"http://{ADDRESS}").get("/")
        if self.live_release() != self.rolled_back_to or CHANGE_MARK in page:
            raise RehearsalFailed(f"after the rollback {self.live_release()} is live")
        status = self.fab("status")
        self.expect_in(
            status, f"Live on http://{ADDRESS}: {self.rolled_back_to}", "rolled back",
            f"workers running {self.rolled_back_to}", "HTTP 200",
        )  # fmt: skip

    def add_item_note(self, clone):
        """A scratch change: a nullable column on items, with its migration."""
        models = clone / "lists" / "models.py"
        text = models.read_text()
        anchor = "    list = models.ForeignKey(List, on_delete=models.CASCADE)\n"
        if anchor not in text:
            raise RehearsalFailed("lists/models.py has no Item.list to add a field after")
        models.write_text(text.replace(anchor, anchor + NOTE_FIELD, 1))
        self.makemigrations(clone, "item_note")

    def makemigrations(self, clone, name):
        self.run(BIN / "python", "manage.py", "makemigrations", "lists", "--name", name,
                 cwd=clone, show=False)  # fmt: skip

    def migrations_and_rollback(self):
        """Deploy lists its migrations; rollback past one needs --yes; a drop is refused."""
        before = self.live_release()
        with self.scratch_clone("Scratch: items get a note", self.add_item_note) as clone:
            output = self.deploy_from(clone)
        self.expect_in(output, "will apply 1 migration(s): lists.", "_item_note")
        refused = self.fab("rollback", expect_failure=True, show=False)
        print(refused.strip())
        self.expect_in(refused, "does not know these migrations", "_item_note", "--yes")
        self.fab("rollback", "--yes")
        if self.live_release() != before:
            raise RehearsalFailed(f"rollback --yes left {self.live_release()} live")

        def add_then_drop(clone):
            self.add_item_note(clone)
            models = clone / "lists" / "models.py"
            models.write_text(models.read_text().replace(NOTE_FIELD, ""))
            self.makemigrations(clone, "remove_item_note")

        with self.scratch_clone("Scratch: drop the note", add_then_drop) as clone:
            output = self.deploy_from(clone, expect_failure=True)
        self.expect_in(
            output, "_remove_item_note removes the column lists.item.note",
            "--allow-destructive", f"Nothing changed on the server: {before} is still live.",
            lines=FIRST_SCREEN,
        )  # fmt: skip

    def nginx_error_pages(self):
        """nginx's own 502 (gunicorn down) and 413 (body too big) are the site's pages."""
        self.gunicorn("stop")
        try:
            status, _, page = FormClient(f"http://{ADDRESS}").get("/lists/new")
        finally:
            self.gunicorn("start")
        if status != 502 or "Back in a minute" not in page or "bootstrap" not in page:
            raise RehearsalFailed(f"gunicorn down: {status}, not the styled page:\n{page[:300]}")
        self.home_page_answers()
        status, _, page = FormClient(f"http://{ADDRESS}").post("/lists/new", {"text": "x" * 2**21})
        if status != 413 or "That was too much" not in page:
            raise RehearsalFailed(f"a 2 MB POST: {status}, not the styled page:\n{page[:300]}")
        print(
            "gunicorn stopped: 502 with the styled 'Back in a minute' page; 2 MB POST: 413, styled."
        )

    def host_down(self):
        staging_host.down(self.state)

    def report(self):
        print("\nPhase times:")
        for title, seconds in self.timings:
            print(f"  {seconds:7.1f} s  {title}")
        print(f"  {sum(s for _, s in self.timings):7.1f} s  in all")


def parse_arguments(description, argv, reuse=True):
    """The options every rehearsal takes; exits with a sentence unless run as root."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--keep-up", action="store_true", help="leave the staging host running")
    if reuse:
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="keep the sites earlier runs left on the host (faster; not a first deploy)",
        )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("SUPERLISTS_STAGING_DIR", "/tmp/superlists-staging")),
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("The rehearsal must run as root: it starts sshd, nginx and mail servers.")
    return args


def run_steps(rehearsal, steps, keep_up, name="rehearsal"):
    """Run the phases in turn (none after a failure), then the host down; True if all passed."""
    failed = None
    passed = 0
    try:
        for title, step in steps:
            with rehearsal.phase(title):
                step()
            passed += 1
    except (RehearsalFailed, staging_host.StagingError) as error:
        failed = error
        print(f"\n{name.upper()} FAILED: {error}", flush=True)
    finally:
        checks = len(steps)
        not_run = checks - passed - (1 if failed else 0)
        if not keep_up:
            checks += 1
            try:
                with rehearsal.phase("staging host down"):
                    rehearsal.host_down()
                passed += 1
            except staging_host.StagingError as error:
                failed = failed or error
                print(f"\n{name.upper()} FAILED: {error}", flush=True)
        rehearsal.report()
    print(f"{name}: {passed} passed, {checks - passed - not_run} failed, {not_run} not run")
    return not failed


def main(argv=None):
    args = parse_arguments(__doc__.splitlines()[0], argv)
    rehearsal = Rehearsal(args.state_dir.resolve())
    # One phase a line, so that phases added by different changes merge without a fight.
    steps = [
        ("remove the sites of earlier runs", rehearsal.clean_host),
        ("staging host up", rehearsal.host_up),
        ("fab provision + first deploy (staging)", rehearsal.deploy),
        ("fab deploy again, nothing changed", rehearsal.redeploy),
        ("functional tests against staging", rehearsal.functional_tests),
        ("a release that fails to build changes nothing", rehearsal.failed_build_changes_nothing),
        (
            "a release failing its health check: switched back",
            rehearsal.failed_health_check_switches_back,
        ),
        ("a code-changing deploy under load", rehearsal.deploy_under_load),
        ("fab rollback under load, then fab status", rehearsal.rollback_under_load),
        ("migrations listed, rollback past one, a drop refused", rehearsal.migrations_and_rollback),
        ("nginx's own 502 and 413 are styled", rehearsal.nginx_error_pages),
        ("manage.py without the site's .env is named", rehearsal.settings_not_loaded),
        ("a migration not applied is named before any test", rehearsal.migration_not_applied),
        ("second site without the staging flag or EMAIL_PASSWORD", rehearsal.second_site),
        ("a browser POST on the second site's port", rehearsal.browser_post_on_another_port),
        ("FT runs aimed at the non-staging site, every spelling", rehearsal.guard_refuses),
        ("SUPERLISTS_STAGING=1 in a production shell", rehearsal.shell_flag_refused),
        ("login email with no EMAIL_PASSWORD on the server", rehearsal.missing_mail_password),
        ("failure reports read the server's logs", rehearsal.failure_reports_read_the_server),
        ("login email round trip (SMTP, then POP3)", rehearsal.login_email_round_trip),
        ("no token in any log, private logs and socket, other Hosts", rehearsal.secrets_and_trust),
        ("the service without its .env refuses to start", rehearsal.fails_closed_without_dotenv),
        ("an FT run against a changed host key is refused", rehearsal.changed_host_key),
        ("a site nginx refuses is undone", rehearsal.refused_nginx_configuration),
    ]
    if args.reuse:
        steps = steps[1:]
    if not run_steps(rehearsal, steps, args.keep_up):
        sys.exit(1)


if __name__ == "__main__":
    main()
