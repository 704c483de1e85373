import json

from django.test import SimpleTestCase

from functional_tests import diagnosis
from functional_tests.network import Trail

NGINX_MISSING = (
    '2026/12/03 17:56:45 [error] 4321#4321: *7 open() "/home/superlists/sites/staging/static/'
    'css/base.css" failed (2: No such file or directory), client: 127.0.0.1, server: 127.0.0.2, '
    'request: "GET /static/css/base.css HTTP/1.1", host: "127.0.0.2"'
)
NGINX_NO_UPSTREAM = (
    "2026/12/03 17:56:45 [crit] 11#11: *3 connect() to unix:/home/superlists/sites/staging/"
    "gunicorn.sock failed (2: No such file or directory) while connecting to upstream, client: "
    '127.0.0.1, server: 127.0.0.2, request: "GET / HTTP/1.1"'
)
DISALLOWED = (
    "2026-12-03 17:56:44,123 ERROR django.security.DisallowedHost [req=6f1c2a9e0b3d4e5f "
    "ip=127.0.0.1 GET / user=-] Invalid HTTP_HOST header: '127.0.0.2'. You may need to add "
    "'127.0.0.2' to ALLOWED_HOSTS."
)
SMTP = (
    "smtplib.SMTPSenderRefused: (530, b'5.7.0 <noreply@staging.test>: Sender address rejected: "
    "Authentication required', 'Superlists <noreply@staging.test>')"
)


class KnownCausesTest(SimpleTestCase):
    def test_a_refused_host_names_the_host_and_the_setting(self):
        [cause] = diagnosis._known(DISALLOWED, "127.0.0.2")
        self.assertIn("Django saw Host '127.0.0.2'", cause)
        self.assertIn("DJANGO_ALLOWED_HOSTS", cause)
        self.assertNotIn("proxy", cause)

    def test_a_host_other_than_the_browsers_blames_the_proxy(self):
        [cause] = diagnosis._known(DISALLOWED.replace("127.0.0.2", "localhost"), "127.0.0.2")
        self.assertIn("not passing the Host header on", cause)

    def test_a_missing_column_or_table_names_migrations_on_sqlite_and_postgresql(self):
        for error in (
            "django.db.utils.OperationalError: no such column: lists_item.priority",
            "django.db.utils.OperationalError: table lists_item has no column named priority",
            "django.db.utils.OperationalError: no such table: lists_tag",
            "django.db.utils.ProgrammingError: column lists_item.priority does not exist",
            'django.db.utils.ProgrammingError: relation "lists_tag" does not exist',
        ):
            with self.subTest(error):
                [cause] = diagnosis._known(error, None)
                self.assertIn("a migration not applied there", cause)

    def test_nginx_error_lines_name_the_file_or_the_upstream(self):
        [cause] = diagnosis._known(NGINX_MISSING, None)
        self.assertIn(
            "nginx could not serve /home/superlists/sites/staging/static/css/base.css "
            "(No such file or directory)",
            cause,
        )
        [cause] = diagnosis._known(NGINX_NO_UPSTREAM, None)
        self.assertIn("nginx could not reach gunicorn", cause)

    def test_a_worker_lost_mid_request_is_named_from_nginx_or_gunicorn(self):
        for line in (
            "2026/12/03 17:56:45 [error] 11#11: *9 upstream prematurely closed connection while "
            'reading response header from upstream, client: 127.0.0.1, request: "POST /lists/new"',
            "[2026-12-03 17:56:45 +0000] [4242] [CRITICAL] WORKER TIMEOUT (pid:4250)",
            "[2026-12-03 17:56:45 +0000] [4242] [ERROR] Worker (pid:4250) was sent SIGKILL! "
            "Perhaps out of memory?",
        ):
            with self.subTest(line):
                [cause] = diagnosis._known(line, None)
                self.assertIn("A gunicorn worker was lost mid-request", cause)

    def test_the_mail_servers_refusal_is_quoted(self):
        [cause] = diagnosis._known(SMTP, None)
        self.assertIn("530, b'5.7.0", cause)

    def test_an_ordinary_line_names_nothing(self):
        self.assertEqual(
            diagnosis._known("[2026-12-03 17:56:40 +0000] [42] [INFO] Booting", None), []
        )


def event(method, **params):
    return {"message": json.dumps({"message": {"method": method, "params": params}})}


class FakeBrowser:
    """Chromium's performance log, as recorded from a form post that redirects."""

    def __init__(self, entries):
        self.entries = entries

    def get_log(self, kind):
        entries, self.entries = self.entries, []
        return entries


class TrailTest(SimpleTestCase):
    def test_a_posts_redirect_and_the_page_after_it_carry_their_workers(self):
        url = "http://127.0.0.2/lists/abc/"
        trail = Trail(
            FakeBrowser(
                [
                    event("Network.requestWillBeSent", requestId="1", type="Document",
                          request={"method": "POST", "url": url}),
                    event("Network.requestWillBeSent", requestId="1", type="Document",
                          request={"method": "GET", "url": url},
                          redirectResponse={"url": url, "status": 302, "headers": {
                              "X-Served-By": "pid 101", "X-Request-ID": "aaaa1111"}}),
                    event("Network.responseReceived", requestId="1", type="Document",
                          response={"url": url, "status": 200, "headers": {
                              "x-served-by": "pid 102", "x-request-id": "bbbb2222"}}),
                    event("Network.requestWillBeSent", requestId="2", type="Stylesheet",
                          request={"method": "GET", "url": "http://127.0.0.2/static/a.css"}),
                    event("Network.responseReceived", requestId="2", type="Stylesheet",
                          response={"url": "http://127.0.0.2/static/a.css", "status": 404,
                                    "headers": {}}),
                ]
            )
        )  # fmt: skip
        page, write = trail.document(), trail.last_write()
        self.assertEqual((page.method, page.status, page.worker), ("GET", 200, "pid 102"))
        self.assertEqual((write.method, write.status, write.worker), ("POST", 302, "pid 101"))
        self.assertEqual(write.request_id, "aaaa1111")
        self.assertEqual(str(trail.responses[-1]), "GET /static/a.css → 404")
        trail.forget()
        self.assertIsNone(trail.document())

    def test_a_page_that_got_no_answer_says_why(self):
        url = "http://127.0.0.2/"
        trail = Trail(
            FakeBrowser(
                [
                    event("Network.requestWillBeSent", requestId="7", type="Document",
                          request={"method": "GET", "url": url}),
                    event("Network.loadingFailed", requestId="7", type="Document",
                          errorText="net::ERR_CONNECTION_REFUSED", canceled=False),
                    event("Network.requestWillBeSent", requestId="8", type="Document",
                          request={"method": "GET", "url": url + "gone/"}),
                    event("Network.loadingFailed", requestId="8", type="Document",
                          errorText="net::ERR_ABORTED", canceled=True),
                ]
            )
        )  # fmt: skip
        page = trail.document()
        self.assertEqual((page.url, page.status), (url, 0))
        self.assertEqual(str(page), "GET / → net::ERR_CONNECTION_REFUSED")
