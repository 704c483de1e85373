"""The rendered nginx site served for real: an nginx of its own in front of a stand-in gunicorn."""

import http.client
import http.server
import json
import shutil
import socketserver
import tempfile
import threading
import unittest
from pathlib import Path

from deploy_tools import fabfile
from deploy_tools.sitepaths import SitePaths
from deploy_tools.tests.private_nginx import start_nginx
from rigs.processes import free_port, wait_until

ERROR_PAGES = Path(fabfile.HERE, "error_pages")


class App(http.server.BaseHTTPRequestHandler):
    """gunicorn's part: answers with the headers nginx passed on."""

    def do_GET(self):
        seen = {name: self.headers[name] for name in ("Host", "X-Real-IP", "X-Forwarded-Proto")}
        seen["X-Request-ID"] = self.headers["X-Request-ID"]
        body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "nginx"  # a unix socket has no client address

    def log_message(self, *args):
        pass


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class NginxSiteTest(unittest.TestCase):
    def setUp(self):
        tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, tmp)
        self.site = fabfile.Site(
            SitePaths("staging.example.com", str(tmp)), "superlists", "supervisor",
            port=free_port(), listen_address="127.0.0.1",
        )  # fmt: skip
        p = self.site.paths
        release = Path(p.release("abc123def456"))
        (release / "static").mkdir(parents=True)
        (release / "static" / "base.css").write_text("body { color: teal; }\n")
        (release / "deploy_tools").mkdir()
        (release / "deploy_tools" / "error_pages").symlink_to(ERROR_PAGES)
        Path(p.source).symlink_to("releases/abc123def456")
        Path(p.logs).mkdir()
        Path(p.nginx_conf).write_text(fabfile.render_nginx_site(self.site))
        self.app = UnixHTTPServer(str(p.socket), App)
        threading.Thread(target=self.app.serve_forever, daemon=True).start()
        self.addCleanup(self.app.server_close)
        self.addCleanup(self.app.shutdown)
        start_nginx(self, tmp, f"include {p.nginx_conf};")

    def get(self, path, host="staging.example.com", method="GET", body=None, **headers):
        connection = http.client.HTTPConnection("127.0.0.1", self.site.port, timeout=5)
        self.addCleanup(connection.close)
        connection.request(method, path, body=body, headers={"Host": host, **headers})
        response = connection.getresponse()
        return response, response.read().decode()

    def test_the_live_releases_static_files_are_served_and_the_rest_goes_to_gunicorn(self):
        response, text = self.get("/static/base.css")
        self.assertEqual((response.status, text), (200, "body { color: teal; }\n"))
        host = f"staging.example.com:{self.site.port}"
        response, text = self.get("/lists/1/", host=host)
        self.assertEqual(response.status, 200)
        seen = json.loads(text)
        # The port stays in Host: Django's CSRF check compares it with the Origin of a POST.
        self.assertEqual(
            {name: seen[name] for name in ("Host", "X-Real-IP", "X-Forwarded-Proto")},
            {"Host": host, "X-Real-IP": "127.0.0.1", "X-Forwarded-Proto": "http"},
        )
        self.assertRegex(seen["X-Request-ID"], r"^[0-9a-f]{32}$")

    def test_gunicorn_down_or_a_body_too_big_get_the_sites_own_pages(self):
        response, text = self.get("/", method="POST", body=b"x" * 2_000_000)
        self.assertEqual((response.status, text), (413, (ERROR_PAGES / "too-big.html").read_text()))
        self.app.shutdown()
        self.app.server_close()
        Path(self.site.paths.socket).unlink()
        response, text = self.get("/")
        self.assertEqual(
            (response.status, text), (502, (ERROR_PAGES / "back-soon.html").read_text())
        )

    def test_other_hosts_are_dropped_unanswered_and_the_version_is_not_told(self):
        with self.assertRaises(http.client.RemoteDisconnected):
            self.get("/", host="scanner.example")
        response, _ = self.get("/")
        self.assertEqual(response.getheader("Server"), "nginx")

    def test_the_access_log_has_the_path_without_its_query_string_or_referrer(self):
        self.get("/accounts/login?token=s3cret-token", Referer="http://x.test/?token=s3cret-too")
        log = Path(self.site.paths.logs, "nginx-access.log")
        wait_until(lambda: log.exists() and log.read_text(), "nginx's access log line", timeout=5)
        line = log.read_text().splitlines()[-1]
        self.assertIn('"GET /accounts/login HTTP/1.1" 200', line)
        self.assertNotIn("s3cret", line)


if __name__ == "__main__":
    unittest.main()
