import io
import logging
import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.test import Client, RequestFactory, SimpleTestCase, TestCase, override_settings
from django.urls import path
from gunicorn.config import Config as GunicornConfig

from accounts.models import LoginToken
from superlists.gunicorn_logging import PathOnlyLogger
from superlists.logs import (
    EscapingFormatter,
    LazyRotatingFileHandler,
    RequestContextFilter,
    client_ip,
)
from superlists.tests.base import EDITH, SuperlistsTestCase
from superlists.urls import urlpatterns as site_urlpatterns

logger = logging.getLogger("superlists.tests")


def logs_something(request):
    logger.warning("something worth knowing")
    return HttpResponse("ok")


def explodes(request):
    raise RuntimeError("kaboom")


# The site's own URLs plus two that only tests need.
urlpatterns = [
    path("logs/", logs_something),
    path("explodes/", explodes),
    *site_urlpatterns,
]
handler404 = "superlists.views.page_not_found"
handler500 = "superlists.views.server_error"


class CapturedLog:
    """Attach a handler formatted exactly like the site's console handler."""

    def __enter__(self):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(RequestContextFilter())
        self.handler.setFormatter(
            EscapingFormatter(settings.LOGGING["formatters"]["plain"]["format"])
        )
        logging.getLogger().addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self.handler)

    @property
    def text(self):
        return self.stream.getvalue()


@override_settings(ROOT_URLCONF="superlists.tests.test_requests")
class RequestIdTest(SuperlistsTestCase):
    def test_every_response_carries_a_request_id(self):
        first = self.client.get("/")["X-Request-ID"]
        second = self.client.get("/")["X-Request-ID"]
        self.assertRegex(first, r"^[0-9a-f]{16}$")
        self.assertNotEqual(first, second)

    def test_a_sane_incoming_id_is_kept_and_junk_is_replaced(self):
        kept = self.client.get("/", headers={"X-Request-ID": "nginx-abc12345"})
        self.assertEqual(kept["X-Request-ID"], "nginx-abc12345")
        junk = self.client.get("/", headers={"X-Request-ID": "bad id\nforged log line"})
        self.assertRegex(junk["X-Request-ID"], r"^[0-9a-f]{16}$")

    def test_every_response_names_the_worker_process_that_served_it(self):
        self.assertEqual(self.client.get("/")["X-Served-By"], f"pid {os.getpid()}")

    def test_error_pages_show_the_request_id_a_visitor_can_quote(self):
        for url, status in (("/lists/not-a-list/", 404), ("/explodes/", 500)):
            self.client.raise_request_exception = False
            with self.subTest(status=status), CapturedLog():
                response = self.client.get(url)
                self.assertEqual(response.status_code, status)
                self.assertContains(
                    response,
                    f'<code id="id_request_id">{response["X-Request-ID"]}</code>',
                    status_code=status,
                )

    def test_log_lines_carry_request_id_ip_method_path_and_user(self):
        self.client.force_login(self.edith)
        with CapturedLog() as log:
            response = self.client.get("/logs/", headers={"X-Real-IP": "127.0.0.9"})
        line = next(x for x in log.text.splitlines() if "something worth knowing" in x)
        self.assertIn(f"req={response['X-Request-ID']}", line)
        self.assertIn("ip=127.0.0.9", line)
        self.assertIn("GET /logs/", line)
        self.assertIn("user=edith@example.com", line)

    def test_anonymous_visitors_are_logged_as_anonymous(self):
        with CapturedLog() as log:
            self.client.get("/logs/")
        self.assertIn("user=anonymous", log.text)

    def test_an_error_is_logged_with_traceback_and_request_id_and_gets_styled_500(self):
        client = Client(raise_request_exception=False)
        with CapturedLog() as log:
            response = client.get("/explodes/")
        self.assertEqual(response.status_code, 500)
        self.assertContains(response, "id_error_page", status_code=500)
        self.assertIn(f"req={response['X-Request-ID']}", log.text)
        self.assertIn("RuntimeError: kaboom", log.text)
        self.assertIn("Traceback", log.text)


@override_settings(ROOT_URLCONF="superlists.tests.test_requests")
class LogSafetyTest(TestCase):
    def test_control_characters_in_a_path_are_escaped_in_the_log_line(self):
        with CapturedLog() as log:
            self.client.get("/logs/%1b[2J%07%0a2026-01-01 ERROR forged line")
        (line,) = log.text.splitlines()
        self.assertIn("GET /logs/\\x1b[2J\\x07\\n2026-01-01 ERROR forged line", line)
        self.assertNotIn("\x1b", log.text)

    @override_settings(LOGIN_EMAILS_PER_HOUR=1)
    def test_control_characters_in_a_quoted_address_are_escaped(self):
        address = '"\x1b]0;pwned\x07"@example.com'
        for _ in range(2):
            with CapturedLog() as log:
                self.client.post("/accounts/send_login_email", {"email": address})
        self.assertIn("over the hourly limit", log.text)
        self.assertIn('"\\x1b]0;pwned\\x07"@example.com', log.text)
        self.assertNotIn("\x07", log.text)

    def test_a_traceback_keeps_its_line_breaks(self):
        with CapturedLog() as log:
            Client(raise_request_exception=False).get("/explodes/")
        self.assertIn("Traceback (most recent call last):\n", log.text)

    def test_a_foreign_host_is_one_warning_line_without_traceback(self):
        with CapturedLog() as log:
            response = self.client.get("/", headers={"Host": "scanner.example"})
        self.assertEqual(response.status_code, 400)
        (line,) = log.text.splitlines()
        self.assertIn("WARNING django.security.DisallowedHost", line)
        self.assertIn("Invalid HTTP_HOST header: 'scanner.example'", line)


class ClientIpTest(TestCase):
    def request(self, peer, real_ip="198.51.100.7"):
        return RequestFactory().get("/", REMOTE_ADDR=peer, HTTP_X_REAL_IP=real_ip)

    def test_x_real_ip_is_believed_from_gunicorns_unix_socket(self):
        self.assertEqual(client_ip(self.request(peer="")), "198.51.100.7")

    @override_settings(TRUSTED_PROXIES=[])
    def test_x_real_ip_from_anyone_else_is_ignored(self):
        self.assertEqual(client_ip(self.request(peer="203.0.113.9")), "203.0.113.9")
        self.assertEqual(client_ip(self.request(peer="127.0.0.1")), "127.0.0.1")

    @override_settings(TRUSTED_PROXIES=["10.0.0.2"])
    def test_x_real_ip_from_a_configured_proxy_is_believed(self):
        self.assertEqual(client_ip(self.request(peer="10.0.0.2")), "198.51.100.7")


class GunicornAccessLogTest(SimpleTestCase):
    def test_access_lines_never_hold_a_query_string(self):
        logger = PathOnlyLogger(GunicornConfig())
        environ = {
            "REQUEST_METHOD": "GET",
            "RAW_URI": "/accounts/login?token=SECRET-TOKEN",
            "PATH_INFO": "/accounts/login",
            "QUERY_STRING": "token=SECRET-TOKEN",
            "SERVER_PROTOCOL": "HTTP/1.0",
            "HTTP_REFERER": "https://site.example/accounts/login?token=SECRET-TOKEN",
            "REMOTE_ADDR": "",
        }
        response = mock.Mock(status="302 Found", sent=0, headers=[])
        request = mock.Mock(headers=[("REFERER", environ["HTTP_REFERER"])])
        atoms = logger.atoms(response, request, environ, timedelta(seconds=0.01))
        line = logger.cfg.access_log_format % atoms
        self.assertIn('"GET /accounts/login HTTP/1.0" 302', line)
        self.assertNotIn("SECRET-TOKEN", line)
        self.assertNotIn("SECRET-TOKEN", repr(atoms))


class ErrorLogFileTest(TestCase):
    def test_error_file_handler_creates_its_folder_and_rotates(self):
        folder = Path(tempfile.mkdtemp()) / "new" / "logs"
        handler = LazyRotatingFileHandler(str(folder / "error.log"), maxBytes=200, backupCount=2)
        self.assertFalse(folder.exists())
        errors = logging.getLogger("superlists.tests.file")
        errors.addHandler(handler)
        try:
            for n in range(10):
                errors.error("error number %d with enough text to fill the file up", n)
        finally:
            errors.removeHandler(handler)
            handler.close()
        self.assertTrue((folder / "error.log").exists())
        self.assertTrue((folder / "error.log.1").exists())

    def test_site_error_log_is_configured_under_log_dir(self):
        handler = settings.LOGGING["handlers"]["errors"]
        self.assertEqual(handler["level"], "ERROR")
        self.assertEqual(Path(handler["filename"]).parent, settings.LOG_DIR)

    def test_tests_never_write_to_the_developers_error_log(self):
        # The errors tests provoke on purpose once filled the real logs/error.log.
        developers = Path(settings.BASE_DIR, "logs").resolve()
        self.assertNotEqual(Path(settings.LOG_DIR).resolve(), developers)
        self.assertTrue(Path(settings.LOG_DIR).resolve().name.startswith("superlists-test-logs-"))


class StyledErrorPagesTest(TestCase):
    def test_404_is_styled(self):
        response = self.client.get("/no/such/page/")
        self.assertContains(response, "id_error_page", status_code=404)
        self.assertContains(response, "bootstrap.min.css", status_code=404)

    def test_400_is_styled(self):
        response = self.client.get("/", headers={"Host": "evil.example"})
        self.assertContains(response, "id_error_page", status_code=400)

    def test_csrf_failure_is_styled(self):
        client = Client(enforce_csrf_checks=True)
        response = client.post("/lists/new", {"text": "no token"})
        self.assertContains(response, "Form expired", status_code=403)
        self.assertContains(response, "id_error_page", status_code=403)

    def test_405_for_wrong_method_is_styled_and_says_what_is_allowed(self):
        for method, url in (("delete", "/"), ("get", "/lists/new"), ("get", "/accounts/logout")):
            response = getattr(self.client, method)(url)
            self.assertContains(response, "id_error_page", status_code=405)
            self.assertIn(response["Allow"], ("GET", "POST"))


@override_settings(DEBUG=False)
class FaviconTest(TestCase):
    def test_every_page_declares_an_icon_that_exists(self):
        # Without one, browsers ask for /favicon.ico on every first visit: a 404 in each log.
        for url, status in (("/", 200), ("/no/such/page/", 404)):
            response = self.client.get(url)
            self.assertEqual(response.status_code, status)
            page = response.content.decode()
            icon = re.search(r'<link href="/static/([^"]+)" rel="icon"', page)
            self.assertIsNotNone(icon, f"{url} declares no icon")
            self.assertTrue(finders.find(icon[1]), f"{icon[1]} is not a static file")


class SecurityHeadersTest(SuperlistsTestCase):
    def test_headers_keep_tokens_out_of_referers_and_frames(self):
        response = self.client.get("/")
        self.assertEqual(response["Referrer-Policy"], "same-origin")
        self.assertEqual(response["X-Content-Type-Options"], "nosniff")
        self.assertEqual(response["X-Frame-Options"], "DENY")

    def test_the_session_and_csrf_cookies_are_sent_http_only(self):
        first_visit = self.client.get("/")
        _, raw_token = LoginToken.objects.issue(EDITH)
        logged_in = self.client.get(f"/accounts/login?token={raw_token}")
        for response, name in ((first_visit, "csrftoken"), (logged_in, "sessionid")):
            set_cookie = response.cookies[name].output()
            self.assertRegex(set_cookie, rf"^Set-Cookie: {name}=\w+;")
            self.assertIn("; HttpOnly", set_cookie)


@override_settings(ROOT_URLCONF="superlists.tests.test_requests")
class SecretKeyRotationTest(SuperlistsTestCase):
    OLD_KEY, NEW_KEY = "old-secret-key-" * 4, "new-secret-key-" * 4

    def setUp(self):
        with override_settings(SECRET_KEY=self.OLD_KEY):
            self.client.force_login(self.edith)

    def test_a_session_signed_with_an_old_key_is_logged_out_with_one_log_line(self):
        # Servers log at INFO: the session's "corrupted" warning reaches the filter, which
        # once read request.user again, and so on, 40,000 lines deep.
        with override_settings(SECRET_KEY=self.NEW_KEY), CapturedLog() as log:
            response = self.client.get("/")
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, "Logged in as")
        self.assertEqual(log.text.count("Session data corrupted"), 1, log.text[:2000])

    def test_a_session_signed_with_a_fallback_key_stays_logged_in(self):
        with override_settings(SECRET_KEY=self.NEW_KEY, SECRET_KEY_FALLBACKS=[self.OLD_KEY]):
            response = self.client.get("/")
        self.assertContains(response, "Logged in as edith@example.com")
