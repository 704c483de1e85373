import tempfile
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client, SimpleTestCase, TestCase, override_settings

from superlists import identity
from superlists.preflight import STATIC_PROBE, run_checks

_FOLDER = Path(tempfile.mkdtemp())


def write(relative, text):
    path = _FOLDER / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


SERVER_DOTENV = write(
    "site/.env",
    "DJANGO_DEBUG_FALSE='1'\nSUPERLISTS_STAGING='1'\nSITENAME='staging.example.com'\n",
)
STATIC_ROOT = write(f"static/{STATIC_PROBE}", "body { margin: 0 }\n").parents[1]
# A deployed, healthy site as the settings see it once its .env is loaded.
SERVER = {
    "DEBUG": False,
    "STAGING": True,
    "SITENAME": "staging.example.com",
    "DOTENV_FILE": SERVER_DOTENV,
    "ALLOWED_HOSTS": ["staging.example.com"],
    "STATIC_ROOT": STATIC_ROOT,
}


def fake_proc(*processes):
    """A /proc with (pid, parent pid, argv) processes: the one seam of the worker check."""
    root = Path(tempfile.mkdtemp(dir=_FOLDER))
    for pid, parent, argv in processes:
        folder = root / str(pid)
        folder.mkdir()
        (folder / "cmdline").write_bytes("\0".join(argv).encode() + b"\0")
        (folder / "stat").write_text(f"{pid} (python3) S {parent} {pid} {pid} 0 -1\n")
    return root


def gunicorn(folder):
    return ["/site/.venv/bin/python", "/site/.venv/bin/gunicorn", "--chdir", str(folder)]


def healthy_proc():
    base = settings.BASE_DIR
    return fake_proc((10, 1, gunicorn(base)), (11, 10, gunicorn(base)), (12, 10, gunicorn(base)))


def problems(host="staging.example.com", through=None, proc=None):
    return run_checks(host, through, proc or healthy_proc())["problems"]


@override_settings(**SERVER)
class PreflightTest(TestCase):
    def test_a_healthy_server_has_no_problems_and_says_who_it_is(self):
        report = run_checks("staging.example.com", None, healthy_proc())
        self.assertEqual(report["problems"], [])
        self.assertEqual(report["workers"], 2)
        self.assertTrue(report["staging"])
        self.assertEqual(report["sitename"], "staging.example.com")
        self.assertEqual(report["site_id"], identity.site_id())

    @override_settings(DEBUG=True, STAGING=False, SITENAME="localhost")
    def test_settings_that_did_not_load_the_dotenv_are_named_with_the_dotenv(self):
        (problem, debug) = problems()
        self.assertIn(f"the settings did not load this site's .env ({SERVER_DOTENV})", problem)
        self.assertIn("SITENAME='staging.example.com' but the settings have 'localhost'", problem)
        self.assertIn("the .env that turns it off was not loaded", debug)

    @override_settings(DEBUG=True)
    def test_debug_turned_on_in_the_code_is_named(self):
        (problem,) = problems()
        self.assertIn("DEBUG is on although the .env sets DJANGO_DEBUG_FALSE", problem)

    @override_settings(DEBUG=True, DOTENV_FILE=write("dev/.env", "SITENAME='staging.example.com'"))
    def test_debug_on_with_no_flag_in_the_dotenv_says_which_variable_to_set(self):
        (problem,) = problems()
        self.assertIn("DEBUG is on: visitors would see debug pages", problem)
        self.assertIn("Set DJANGO_DEBUG_FALSE=1 in the site's .env", problem)

    def test_a_host_the_browser_uses_outside_allowed_hosts_is_named(self):
        (problem,) = problems(host="127.0.0.2")
        self.assertIn("does not cover 127.0.0.2, the address the browser uses", problem)

    def test_an_unapplied_migration_is_named(self):
        MigrationRecorder(connection).record_unapplied("lists", "0001_initial")
        (problem,) = problems()
        self.assertIn("not applied to the database: lists.0001_initial", problem)

    @override_settings(STATIC_ROOT=_FOLDER / "never-collected")
    def test_static_files_never_collected_are_named(self):
        (problem,) = problems()
        self.assertIn(f"never-collected/{STATIC_PROBE} is missing: collectstatic", problem)

    def test_static_file_not_served_through_nginx_is_named(self):
        with http_server(status=404, body=b"not here") as address:
            (problem,) = problems(through=f"http://{address}")
        self.assertIn(f"answered /static/{STATIC_PROBE} with HTTP 404", problem)

    def test_static_file_served_through_nginx_is_fine(self):
        body = (STATIC_ROOT / STATIC_PROBE).read_bytes()
        with http_server(status=200, body=body) as address:
            self.assertEqual(problems(through=f"http://{address}"), [])

    def test_no_gunicorn_for_this_release_is_named(self):
        other = fake_proc((20, 1, gunicorn("/home/x/sites/other/source")), (21, 20, ["sh"]))
        (problem,) = problems(proc=other)
        self.assertIn("no gunicorn is running for this release", problem)

    def test_gunicorn_without_workers_is_named(self):
        (problem,) = problems(proc=fake_proc((10, 1, gunicorn(settings.BASE_DIR))))
        self.assertIn("gunicorn (pid 10) runs no workers", problem)


class SiteIdTest(SimpleTestCase):
    def test_two_sites_or_two_databases_never_share_an_id(self):
        with override_settings(SITENAME="a.example.com"):
            first = identity.site_id()
        with override_settings(SITENAME="b.example.com"):
            self.assertNotEqual(identity.site_id(), first)
        with override_settings(SITENAME="a.example.com", SECRET_KEY="another site's key"):
            self.assertNotEqual(identity.site_id(), first)
        database = {**settings.DATABASES["default"], "NAME": "/elsewhere/db.sqlite3"}
        other_database = override_settings(
            SITENAME="a.example.com", DATABASES={"default": database}
        )
        # "Overriding DATABASES can lead to unexpected behavior" is the point here.
        with warnings.catch_warnings(action="ignore"), other_database:
            self.assertNotEqual(identity.site_id(), first)


class SiteHeaderTest(TestCase):
    @override_settings(**{**SERVER, "ALLOWED_HOSTS": ["testserver"]})
    def test_a_staging_site_says_which_site_answered(self):
        response = Client().get("/")
        self.assertEqual(response[identity.HEADER], f"staging.example.com {identity.site_id()}")

    @override_settings(**{**SERVER, "DOTENV_FILE": _FOLDER / "none/.env"})
    def test_a_site_whose_dotenv_does_not_mark_it_staging_sends_nothing(self):
        response = Client().get("/", HTTP_HOST="localhost")
        self.assertNotIn(identity.HEADER, response)


class http_server:
    """A real HTTP server on loopback answering every GET with one status and body."""

    def __init__(self, status, body):
        answer = (status, body)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(answer[0])
                self.send_header("Content-Length", str(len(answer[1])))
                self.end_headers()
                self.wfile.write(answer[1])

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
