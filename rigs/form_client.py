"""An HTTP client that keeps cookies and posts forms with their CSRF token."""

import functools
import http.cookiejar
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request

# An item's text as a list page shows it.
ROW = re.compile(r'<td class="item-text">([^<]*)</td>')


@functools.cache
def tls_context():
    """One TLS context for every client: making one reads the whole CA bundle (SSL_CERT_FILE),
    which cost 20 ms of CPU per request, and made 8 clients' p99 seconds on 2 busy cores."""
    return ssl.create_default_context()


class FormClient:
    """A cookie-keeping HTTP client that fills in the CSRF token like a browser form would."""

    CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

    def __init__(self, base_url):
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar),
            urllib.request.HTTPSHandler(context=tls_context()),
            NoRedirect(),
        )
        self.token = None

    def get(self, path):
        status, headers, body = self._send(urllib.request.Request(self.base_url + path))
        found = self.CSRF_INPUT.search(body)
        if found:
            self.token = found.group(1)
        return status, headers, body

    def post(self, path, data):
        if self.token is None:
            self.get("/")
        payload = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self.token}).encode()
        # As a browser's form does: over https Django's CSRF check wants the Origin (or Referer).
        origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(self.base_url))
        request = urllib.request.Request(self.base_url + path, data=payload)
        request.add_header("Origin", origin)
        return self._send(request)

    def _send(self, request):
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode(errors="replace")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Let the caller see a redirect as the answer to its POST."""

    def redirect_request(self, *args, **kwargs):
        return None
