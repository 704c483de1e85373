"""What a browser received: each response's status, the worker that served it, its request id.

Selenium cannot see response headers, and a form's POST ends in a redirect the page never
shows. Chromium's performance log (network events only) records both, redirects included.
"""

import json
import weakref
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

# Enough for a story's page loads, their stylesheets and scripts, and its form posts.
KEPT = 500
_trails = weakref.WeakKeyDictionary()


def log_network(options):
    """Ask Chromium (through ChromeOptions) to log network events only, for trail()."""
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    options.add_experimental_option(
        "perfLoggingPrefs", {"enableNetwork": True, "enablePage": False}
    )


@dataclass(frozen=True)
class Response:
    """One HTTP response as the browser got it."""

    method: str
    url: str
    status: int
    kind: str  # Chromium's resource type: Document, Stylesheet, Script, Fetch, Other…
    headers: dict  # names in lower case
    error: str = ""  # when no answer came at all (status 0): Chromium's net::ERR_… text

    @property
    def path(self):
        return urlsplit(self.url).path

    @property
    def worker(self):
        return self.headers.get("x-served-by")

    @property
    def request_id(self):
        return self.headers.get("x-request-id")

    def status_text(self):
        if self.error:
            return self.error
        try:
            return f"{self.status} {HTTPStatus(self.status).phrase}"
        except ValueError:
            return str(self.status)

    def __str__(self):
        return f"{self.method} {self.path} → {self.error or self.status}"


class Trail:
    """The responses one browser received, oldest first."""

    def __init__(self, browser):
        self.browser = browser
        self.responses = deque(maxlen=KEPT)
        self._requests = {}

    def read(self):
        """Every response kept, after taking in what Chromium logged since the last read."""
        for entry in self.browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            self._take(message["method"], message["params"])
        return list(self.responses)

    def forget(self):
        """Start afresh, as for a new test."""
        self.read()
        self.responses.clear()
        self._requests.clear()

    def document(self):
        """The response the page on screen came from, or None before any page."""
        pages = [r for r in self.read() if r.kind == "Document" and not 300 <= r.status < 400]
        return pages[-1] if pages else None

    def last_write(self):
        """The last response to a form post or other write, redirect hops included."""
        writes = [r for r in self.read() if r.method not in {"GET", "HEAD", "OPTIONS"}]
        return writes[-1] if writes else None

    def _take(self, method, params):
        if method == "Network.requestWillBeSent":
            redirected = params.get("redirectResponse")
            if redirected:
                # The previous hop of this request: its method is the one it was sent with.
                self._add(params["requestId"], redirected)
            request = params["request"]
            self._requests[params["requestId"]] = (
                request["method"],
                params.get("type", ""),
                request["url"],
            )
        elif method == "Network.responseReceived":
            self._add(params["requestId"], params["response"], params.get("type"))
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            # No answer at all (refused, reset, DNS): a status 0 with Chromium's reason.
            _, _, url = self._requests.get(params["requestId"], ("GET", "", ""))
            failed = {"url": url, "status": 0, "headers": {}}
            self._add(params["requestId"], failed, params.get("type"), params["errorText"])

    def _add(self, request_id, response, kind=None, error=""):
        method, sent_kind, _ = self._requests.get(request_id, ("GET", "", ""))
        if not response["url"].startswith("http"):
            return
        headers = {name.lower(): value for name, value in response.get("headers", {}).items()}
        self.responses.append(
            Response(method, response["url"], response["status"], kind or sent_kind, headers, error)
        )


def trail(browser):
    """The Trail of a browser started by functional_tests.browsers."""
    if browser not in _trails:
        _trails[browser] = Trail(browser)
    return _trails[browser]
