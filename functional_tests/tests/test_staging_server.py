import io
import json
import tempfile
import threading
from contextlib import redirect_stderr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.test import SimpleTestCase

from deploy_tools.connect import ConnectError
from deploy_tools.sitepaths import SitePaths
from functional_tests.server import StagingError, StagingServer
from rigs.processes import free_port


class UnreachableStagingServerTest(SimpleTestCase):
    def test_a_dead_host_is_tried_once_and_then_refused_with_the_same_sentence(self):
        known_hosts = Path(tempfile.mkdtemp()) / "known_hosts"
        known_hosts.write_text("")
        environ = {
            "STAGING_SSH_HOST": f"deploy@127.0.0.1:{free_port()}",
            "SUPERLISTS_KNOWN_HOSTS": str(known_hosts),
        }
        server = StagingServer("127.0.0.1:8999", environ)
        with self.assertRaisesMessage(ConnectError, "Could not connect to deploy@127.0.0.1"):
            server.reset()
        with self.assertRaisesMessage(StagingError, "not tried again this run"):
            server.create_session("edith@example.com")


STAGING_ID, OTHER_ID = "1111aaaa2222bbbb", "3333cccc4444dddd"


def report(sitename, site_id, staging=True, **changes):
    """What `manage.py preflight --json` prints on a healthy site."""
    return {
        "sitename": sitename,
        "site_id": site_id,
        "staging": staging,
        "dotenv": f"/home/superlists/sites/{sitename}/.env",
        "dotenv_staging": staging,
        "settings_staging": staging,
        "static_path": "/static/css/base.css",
        "static_size": len(STATIC_BODY),
        "workers": 2,
        "problems": [],
        **changes,
    }


STATIC_BODY = b"body { margin: 0 }\n"


class FakeSite:
    """A real HTTP site on loopback that may say which staging site it is."""

    def __init__(self, header=None):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = STATIC_BODY if self.path.startswith("/static/") else b"<html></html>"
                self.send_response(200)
                if site.header and not self.path.startswith("/static/"):
                    self.send_header("X-Superlists-Site", site.header)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.header = header
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ProvingTheSiteTest(SimpleTestCase):
    """The SSH side is the one seam faked here: each site's preflight report, by site name."""

    def setUp(self):
        self.staging = FakeSite(header=f"staging.test {STAGING_ID}")
        self.production = FakeSite(header=None)  # production sites send no header
        self.addCleanup(self.staging.close)
        self.addCleanup(self.production.close)
        self.sites = {
            "staging.test": report("staging.test", STAGING_ID),
            "127.0.0.1": report("127.0.0.1", STAGING_ID),
            "prod": report("prod", OTHER_ID, staging=False),
        }
        self.changed = []
        self.dotenvs = {}  # each site's own .env as read over SSH, where a test needs one

    def server(self, target, sitename=""):
        server = StagingServer(target, {"STAGING_SITENAME": sitename} if sitename else {})
        # Never used: _manage is the seam (paths only name files in messages).
        server.__dict__["connection"] = None
        server.__dict__["paths"] = SitePaths("staging.test", "/home/superlists")

        def manage(*args):
            # What the server's commands do, by its report: refuse, or change and answer.
            site = self.sites[server.sitename]
            if args[0] == "preflight":
                return json.dumps(site)
            asked_for = args[args.index("--site-id") + 1]
            if not site["staging"] or asked_for != site["site_id"]:
                raise StagingError(f"{args[0]} refused")
            if "--preflight" in args and site["problems"]:
                raise StagingError("The preflight found problems; nothing was changed.")
            self.changed.append((server.sitename, *args))
            return json.dumps({**site, "seconds": 0.1}) if "--preflight" in args else "key"

        server._manage = manage
        server._site_dotenv = lambda: self.dotenvs.get(server.sitename, {})
        return server

    def changes(self):
        return self.changed

    def test_a_production_site_is_refused_in_every_spelling_and_nothing_is_changed(self):
        port = self.production.port
        for target in (f"127.0.0.1:{port}", f"http://127.0.0.1:{port}/"):
            for sitename in ("", "prod", "staging.test", "127.0.0.1"):
                with self.subTest(target=target, sitename=sitename):
                    server = self.server(target, sitename)
                    with self.assertRaisesMessage(StagingError, "nothing was changed"):
                        server.reset()
                    with self.assertRaisesMessage(StagingError, "not tried again this run"):
                        server.create_session("edith@staging.test")
        self.assertEqual(self.changes(), [])

    def test_the_url_of_a_production_site_with_a_staging_sitename_is_refused_for_no_header(self):
        server = self.server(f"127.0.0.1:{self.production.port}", "staging.test")
        with self.assertRaisesMessage(StagingError, "without the X-Superlists-Site header"):
            server.reset()

    def test_a_named_production_site_is_refused_naming_its_dotenv(self):
        server = self.server(f"127.0.0.1:{self.production.port}", "prod")
        expected = "site prod on 127.0.0.1 is not a staging site: its .env (/home/superlists"
        with self.assertRaisesMessage(StagingError, expected):
            server.reset()

    def test_a_staging_site_named_other_than_the_one_answering_is_refused(self):
        self.sites["other"] = report("other", OTHER_ID)
        server = self.server(f"127.0.0.1:{self.staging.port}", "other")
        with self.assertRaisesMessage(StagingError, "is served by site staging.test (id 1111"):
            server.reset()
        self.assertEqual(self.changes(), [])

    def test_host_and_port_without_a_sitename_find_the_site_that_answers(self):
        server = self.server(f"127.0.0.1:{self.staging.port}")
        with redirect_stderr(io.StringIO()) as said:
            server.reset()
        server.create_session("edith@staging.test")
        self.assertIn("Staging preflight of http://127.0.0.1", said.getvalue())
        self.assertEqual(server.sitename, "staging.test")
        self.assertEqual(
            self.changes(),
            [
                (
                    "staging.test",
                    *("reset_staging", "--site-id", STAGING_ID, "--preflight", "127.0.0.1"),
                ),
                ("staging.test", "create_session", "edith@staging.test", "--site-id", STAGING_ID),
            ],
        )
        self.assertLess(server.preflight_seconds, 5)

    def test_settings_that_ignore_the_dotenv_are_reported_not_called_not_staging(self):
        problem = "the settings did not load this site's .env (/x/.env): it sets DJANGO_DEBUG…"
        self.sites["staging.test"].update(staging=False, settings_staging=False, problems=[problem])
        server = self.server(f"127.0.0.1:{self.staging.port}")
        with self.assertRaises(StagingError) as refused:
            server.reset()
        message = str(refused.exception)
        self.assertIn(
            "manage.py on site staging.test on 127.0.0.1 does not run with the site's settings: "
            "the settings did not load",
            message,
        )
        self.assertIn(
            "The site's .env (/home/superlists/sites/staging.test/.env) marks it", message
        )
        self.assertNotIn("not a staging", message)
        self.assertEqual(self.changes(), [])

    def test_each_preflight_problem_is_named_on_one_screen(self):
        self.sites["staging.test"]["problems"] = ["DEBUG is on: …", "1 migration(s) not applied"]
        self.sites["staging.test"]["static_size"] = 999
        server = self.server(f"127.0.0.1:{self.staging.port}")
        with self.assertRaises(StagingError) as caught:
            server.reset()
        lines = str(caught.exception).splitlines()
        self.assertIn("found 3 problem(s); no test ran", lines[0])
        self.assertEqual(lines[1:3], ["  - DEBUG is on: …", "  - 1 migration(s) not applied"])
        self.assertIn("nginx does not serve the collected static files", lines[3])
        self.assertEqual(self.changes(), [])

    def test_a_staging_site_that_cannot_answer_is_reported_by_its_preflight(self):
        self.staging.header = None  # nginx's 502 page: gunicorn is down
        self.sites["127.0.0.1"]["problems"] = ["no gunicorn is running for this release (…)"]
        server = self.server(f"127.0.0.1:{self.staging.port}")
        with self.assertRaises(StagingError) as caught:
            server.reset()
        lines = str(caught.exception).splitlines()
        self.assertIn("found 1 problem(s); no test ran (http://127.0.0.1:", lines[0])
        self.assertEqual(lines[1], "  - no gunicorn is running for this release (…)")
        self.assertEqual(self.changes(), [])

    def test_a_release_that_cannot_find_the_sites_dotenv_is_not_called_not_staging(self):
        missing = "there is no .env at /home/superlists/sites/staging.test/releases/abc/.env: …"
        self.sites["staging.test"].update(
            staging=False, dotenv_staging=False, settings_staging=False, problems=[missing]
        )
        self.dotenvs["staging.test"] = {"SUPERLISTS_STAGING": "1"}
        server = self.server(f"127.0.0.1:{self.staging.port}")
        with self.assertRaises(StagingError) as refused:
            server.reset()
        message = str(refused.exception)
        self.assertIn("does not run with the site's settings: there is no .env at", message)
        self.assertIn(
            "The site's .env (/home/superlists/sites/staging.test/.env) marks it", message
        )
        self.assertNotIn("not a staging", message)
