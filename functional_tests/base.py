"""The base of every functional test: the cast, the browsers, the server, and failure reports."""

import contextlib
import sys
import time
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import tag
from selenium.common.exceptions import WebDriverException

from deploy_tools.serverlogs import Record
from functional_tests import diagnosis
from functional_tests.browsers import forget_everything, pool
from functional_tests.internals import (
    NotesItsFailures,
    OneLiveServerPerProcess,
    QuickLiveServerThread,
)
from functional_tests.ormguard import forbid_direct_queries
from functional_tests.server import get_server
from functional_tests.waits import explained_by, with_cause

ARTIFACTS = Path(settings.BASE_DIR) / "ft-artifacts"
# The end of the server log that fits on one screen with the cause; the rest is in a file.
SHOWN_LOG_LINES = 40
TRACEBACK_LINES = 8
OFF_SCREEN = {"gunicorn-access.log"}


@tag("ft")
class FunctionalTest(NotesItsFailures, OneLiveServerPerProcess, StaticLiveServerTestCase):
    """A story against the server under test; browsers stay warm, visitors start fresh."""

    server_thread_class = QuickLiveServerThread

    @staticmethod
    def prepare_ahead():
        """Called by the test runner before the databases are made: start the browsers."""
        pool.start_ahead()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.browser = pool.acquire("edith")

    @classmethod
    def tearDownClass(cls):
        pool.release("edith", cls.browser)
        super().tearDownClass()

    def setUp(self):
        self.started = time.time()
        self.enterContext(forbid_direct_queries())
        self.server = get_server(self)
        self.server.reset()
        # Where the server's logs end now: a failure report shows only this test's lines.
        self.log_mark = self.server.log_mark()
        self.edith = self.server.email_for("edith")
        self.oni = self.server.email_for("oni")
        self.browsers = {"edith": self.browser}
        self.forget_visitor(self.browser)
        self._causes = None
        self.enterContext(explained_by(self.causes))

    def tearDown(self):
        if not self._passed():
            self._report_failure()
        super().tearDown()

    def forget_visitor(self, browser=None):
        """Make a browser a first-time visitor: a fresh session, as if on another computer."""
        forget_everything(browser or self.browser, self.server.url)

    def open_second_browser(self, role):
        """A second visitor's browser (say Oni's), fresh for this test."""
        browser = pool.acquire(role)
        self.addCleanup(pool.release, role, browser)
        self.browsers[role] = browser
        self.forget_visitor(browser)
        return browser

    def log_in_as(self, email, browser=None):
        """Give a browser a logged-in session for email without going through the email."""
        browser = browser or self.browser
        session_key = self.server.create_session(email)
        # Set through DevTools, for the server's address, so no page has to load first
        # (WebDriver's add_cookie only sets cookies for the page the browser is on).
        browser.execute_cdp_cmd(
            "Network.setCookie",
            {"name": settings.SESSION_COOKIE_NAME, "value": session_key, "url": self.server.url},
        )

    def causes(self):
        """Sentences naming why this test is failing, worked out once (see diagnosis.py)."""
        if self._causes is None:
            self._causes = diagnosis.explain(self)
        return self._causes

    @contextlib.contextmanager
    def explaining(self):
        """Let an assertion that fails inside start its message with the cause."""
        try:
            yield
        except AssertionError as error:
            raise AssertionError(with_cause(str(error))) from None

    def _passed(self):
        return not self.failures_so_far()

    def _failure_line(self):
        problems = self.failures_so_far()
        if not problems:
            return "(no cause known from the pages or the server's log)"
        return problems[-1].strip().splitlines()[-1]

    def _report_failure(self):
        ARTIFACTS.mkdir(exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        prefix = ARTIFACTS / f"{self.id()}.{stamp}"
        # The cause first, so it is on the screen the failure starts on; when nothing else
        # names one, the failure's own last line (a DirectQueryError, say) is the best there is.
        causes = self.causes() or [self._failure_line()]
        lines = [f"\n--- {self.id()} failed ---", *causes]
        for role, browser in self.browsers.items():
            try:
                browser.save_screenshot(f"{prefix}.{role}.png")
                Path(f"{prefix}.{role}.html").write_text(browser.page_source, encoding="utf-8")
            except WebDriverException as error:
                lines.append(f"{role}'s browser could not be saved: {error.msg}")
                continue
            lines.append(f"{role} was at {browser.current_url}")
            lines.append(f"  screenshot: {prefix}.{role}.png")
            lines.append(f"  page HTML:  {prefix}.{role}.html")
        try:
            records = self.server.log_records(self.started, self.log_mark)
        except Exception as error:
            # Whatever broke the log fetch must not hide the test's own failure.
            records = [Record("(log)", None, [f"could not fetch the server's log: {error}"])]
        log = [line for record in records for line in record.shown()]
        Path(f"{prefix}.log").write_text("\n".join(log) + "\n", encoding="utf-8")
        # On screen, each traceback's start and end, and no gunicorn access lines (nginx's
        # name the same requests): the whole of it is in the file.
        brief = [
            line
            for record in records
            if record.source not in OFF_SCREEN
            for line in record.shown(most=TRACEBACK_LINES)
        ]
        lines.append(f"server log since the test started: {len(log)} lines in {prefix}.log")
        if len(brief) > SHOWN_LOG_LINES:
            lines.append(f"  … the last {SHOWN_LOG_LINES}:")
        lines.extend(f"  {line}" for line in brief[-SHOWN_LOG_LINES:])
        sys.stderr.write("\n".join(lines) + "\n")
