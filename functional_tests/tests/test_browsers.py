import http.server
import ssl
import subprocess
import tempfile
import threading
from pathlib import Path
from unittest import mock

from django.test import SimpleTestCase, tag

from functional_tests import browsers


def openssl(*args):
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def make_ca_and_certificate(folder):
    """A CA and a server certificate it signs for 127.0.0.1, as staging_host.make_tls makes."""
    ca_cert, ca_key = folder / "ca.crt", folder / "ca.key"
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", ca_key, "-out", ca_cert,
    )  # fmt: skip
    (folder / "ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", folder / "site.key", "-out", folder / "site.csr",
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", folder / "site.csr", "-CA", ca_cert, "-CAkey", ca_key,
        "-CAcreateserial", "-days", "1", "-extfile", folder / "ext", "-out", folder / "site.crt",
    )  # fmt: skip
    return ca_cert


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<title>Trusted</title>")

    def log_message(self, *args):
        pass


@tag("ft")
class StagingCaTest(SimpleTestCase):
    """STAGING_CA_CERT: the browser trusts that CA, and only that one, with no ignored errors."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.folder = Path(tempfile.mkdtemp())
        cls.ca_cert = make_ca_and_certificate(cls.folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cls.folder / "site.crt", cls.folder / "site.key")
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
        cls.server.socket = context.wrap_socket(cls.server.socket, server_side=True)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.url = f"https://127.0.0.1:{cls.server.server_address[1]}/"

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        super().tearDownClass()

    def title_seen(self, environ):
        with mock.patch.dict("os.environ", environ):
            browser = browsers.start_browser()
        try:
            browser.get(self.url)
            return browser.title
        finally:
            browser.quit()

    def test_a_site_certified_by_the_staging_ca_is_trusted(self):
        self.assertEqual(self.title_seen({"STAGING_CA_CERT": str(self.ca_cert)}), "Trusted")

    def test_without_the_ca_the_browser_refuses_the_certificate(self):
        with mock.patch.dict("os.environ"):
            browsers.os.environ.pop("STAGING_CA_CERT", None)
            self.assertEqual(self.title_seen({}), "Privacy error")

    def test_a_missing_ca_file_is_a_sentence_naming_the_variable(self):
        with self.assertRaisesRegex(browsers.BrowserSetupError, "STAGING_CA_CERT=/nowhere"):
            browsers.trusting_home("/nowhere/ca.crt")
