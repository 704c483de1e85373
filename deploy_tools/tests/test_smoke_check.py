"""smoke_check.py against a real HTTP server on loopback, as fab deploy runs it on a server."""

import http.server
import subprocess
import sys
import threading
import unittest
from pathlib import Path

from rigs.processes import free_port

SCRIPT = Path(__file__).resolve().parent.parent / "smoke_check.py"


class Site(http.server.BaseHTTPRequestHandler):
    """Answers / with the next status of its server's plan, 200 only for the right Host."""

    def do_GET(self):
        plan = self.server.plan
        status = plan.pop(0) if plan else 200
        self.send_response(status if self.headers["Host"] == "site.test" else 400)
        if status == 500:
            self.send_header("X-Request-ID", "0f1e2d3c")
        if status in (301, 302):
            # A redirect to https, or (self.server.location) wherever the test says.
            self.send_header("Location", getattr(self.server, "location", "https://site.test/"))
        self.end_headers()

    def log_message(self, *args):
        pass


class AppHost(http.server.BaseHTTPRequestHandler):
    """Django behind a balancer with TLS: https unless the scheme header says the visit was.

    With server.trusts_header False it ignores the header, as an app host's nginx that does
    not pass it on (or a site without SECURE_PROXY_SSL_HEADER) would.
    """

    def do_GET(self):
        https = self.headers["X-Forwarded-Proto"] == "https" and self.server.trusts_header
        self.send_response(200 if https else 301)
        if not https:
            self.send_header("Location", "https://site.test/")
        self.end_headers()

    def log_message(self, *args):
        pass


def smoke_check(port, hostname="site.test", timeout=3, *options):
    return subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "http",
            "127.0.0.1",
            str(port),
            hostname,
            "--timeout",
            str(timeout),
            *options,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


class SmokeCheckTest(unittest.TestCase):
    def serve(self, *plan):
        server = http.server.HTTPServer(("127.0.0.1", 0), Site)
        server.plan = list(plan)
        self.servers = [*getattr(self, "servers", []), server]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server.server_address[1]

    def test_waits_out_bad_gateways_while_gunicorn_starts(self):
        result = smoke_check(self.serve(502, 502))
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "HTTP 200"))

    def test_a_redirect_counts_as_answering(self):
        result = smoke_check(self.serve(301))
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "HTTP 301"))

    def test_a_redirect_to_the_same_page_is_a_loop_naming_the_scheme_header(self):
        # What Django behind TLS answers when nginx does not pass X-Forwarded-Proto.
        port = self.serve(301, 301, 301)
        for location in ("http://site.test/", "/"):
            with self.subTest(location=location):
                self.servers[-1].location = location
                result = smoke_check(port)
                self.assertEqual(result.returncode, 1)
                self.assertIn("a redirect loop", result.stdout)
                self.assertIn("X-Forwarded-Proto", result.stdout)

    def test_an_app_host_behind_a_tls_balancer_is_asked_as_the_balancer_asks(self):
        for trusts_header, expected in ((True, (0, "HTTP 200")), (False, (1, "a redirect loop"))):
            with self.subTest(trusts_header=trusts_header):
                server = http.server.HTTPServer(("127.0.0.1", 0), AppHost)
                server.trusts_header = trusts_header
                threading.Thread(target=server.serve_forever, daemon=True).start()
                self.addCleanup(server.server_close)
                self.addCleanup(server.shutdown)
                port = server.server_address[1]
                result = smoke_check(port, "site.test", 3, "--forwarded-proto", "https")
                self.assertEqual(result.returncode, expected[0], result.stdout)
                self.assertIn(expected[1], result.stdout)
        # Without the option the redirect to https is an answer: the plain single-host case.
        self.assertEqual(smoke_check(port).returncode, 0)

    def test_a_4xx_fails_at_once(self):
        result = smoke_check(self.serve(), hostname="wrong.test")
        self.assertEqual((result.returncode, result.stdout.strip()), (1, "HTTP 400"))

    def test_a_server_error_fails_at_once_with_its_request_id(self):
        result = smoke_check(self.serve(500, 200))
        self.assertEqual(
            (result.returncode, result.stdout.strip()), (1, "HTTP 500 request-id=0f1e2d3c")
        )

    def test_nothing_listening_fails_naming_the_error(self):
        result = smoke_check(free_port(), timeout=0.5)
        self.assertEqual(result.returncode, 1)
        self.assertIn("ConnectionRefusedError", result.stdout)


if __name__ == "__main__":
    unittest.main()
