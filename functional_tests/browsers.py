"""Debian's Chromium driven through its own chromedriver: nothing downloaded, started rarely."""

import functools
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from functional_tests.internals import at_worker_exit
from functional_tests.network import log_network, trail
from functional_tests.server import WHERE_TO_SET
from superlists.env import Variables

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW_SIZE = (1024, 768)
PAGE_STORAGE = "local_storage,session_storage,indexeddb,service_workers"

# Keep Selenium Manager from reaching for the network to "find" a driver we already name.
os.environ.setdefault("SE_OFFLINE", "true")

_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    # RenderDocument: a same-site navigation reuses its page's renderer objects instead of
    # building new ones, 12-15% off every page load here (82 against 95 ms, interleaved, load
    # average 10). The omnibox popups: Chromium 156 keeps two preloaded in a hidden renderer,
    # even headless, which burned 10% of a core per browser doing nothing (0.45-0.6 s of CPU
    # in 5 idle seconds; 0.04-0.06 s without them).
    "--disable-features=RenderDocument,WebUIOmniboxPopup,WebUIOmniboxAimPopup",
    f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}",
)


def headless():
    """Headless unless SELENIUM_HEADLESS=0 asks to watch the browser on a desktop."""
    return Variables(where=WHERE_TO_SET).bool("SELENIUM_HEADLESS", default=True)


class BrowserSetupError(Exception):
    """The browser cannot be set up as asked; the message names the variable and the fix."""


@functools.cache
def trusting_home(ca_cert):
    """A HOME whose NSS database trusts ca_cert: Chromium on Linux reads ~/.pki/nssdb."""
    # The CA is trusted for server certificates like any root ("C,,"); nothing is told to
    # ignore certificate errors, so a wrong name or an expired certificate still fails.
    if not Path(ca_cert).is_file():
        raise BrowserSetupError(
            f"STAGING_CA_CERT={ca_cert} is not a file; set it {WHERE_TO_SET} to the staging "
            "CA's certificate (python -m rigs.staging_host up writes it to tls/ca.crt)."
        )
    certutil = shutil.which("certutil")
    if not certutil:
        raise BrowserSetupError(
            "STAGING_CA_CERT is set but certutil is missing, so the browser cannot be told to "
            "trust that CA: apt-get install libnss3-tools."
        )
    home = tempfile.mkdtemp(prefix="superlists-browser-home-")
    at_worker_exit(lambda: shutil.rmtree(home, ignore_errors=True))
    database = Path(home) / ".pki" / "nssdb"
    database.mkdir(parents=True)
    for command in (
        [certutil, "-N", "-d", f"sql:{database}", "--empty-password"],
        [certutil, "-A", "-d", f"sql:{database}", "-n", "staging CA", "-t", "C,,", "-i", ca_cert],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode:
            raise BrowserSetupError(
                f"certutil could not trust STAGING_CA_CERT={ca_cert}: "
                f"{(result.stderr or result.stdout).strip()}"
            )
    return home


def browser_environment():
    """chromedriver's environment: a HOME that trusts STAGING_CA_CERT when it is set."""
    ca_cert = Variables(where=WHERE_TO_SET).str("STAGING_CA_CERT")
    if not ca_cert:
        return None
    return {**os.environ, "HOME": trusting_home(os.path.abspath(ca_cert))}


def start_browser():
    """A new Chromium session with the flags known to work offline here."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # A page counts as loaded at DOMContentLoaded: its stylesheets are in by then (lists.js is
    # deferred, and waits for them), and the waits poll for anything later.
    options.page_load_strategy = "eager"
    for flag in _FLAGS:
        options.add_argument(flag)
    # No speculative preconnects: an idle socket would outlive the test class's live server.
    options.add_experimental_option("prefs", {"net.network_prediction_options": 2})
    log_network(options)
    if headless():
        options.add_argument("--headless=new")
    service = Service(executable_path=CHROMEDRIVER, env=browser_environment())
    browser = webdriver.Chrome(service=service, options=options)
    browser.set_window_size(*WINDOW_SIZE)
    return browser


def forget_everything(browser, origin):
    """Make browser a first-time visitor of origin: no cookies, no storage."""
    # Cookies ignore ports, so one left by another test class's live server would still apply.
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    # The storage a page can write (the site writes none today); "all" also empties caches
    # and costs 0.2-0.25 s per visitor, a sixth of a test's time.
    browser.execute_cdp_cmd(
        "Storage.clearDataForOrigin", {"origin": origin, "storageTypes": PAGE_STORAGE}
    )
    trail(browser).forget()


class BrowserPool:
    """Browsers kept warm for the whole run, one per role: starting Chromium costs 0.5-3 s."""

    # The first browser also starts a spare in the background, while the first tests run, so
    # a story that needs a second visitor (Oni) does not wait for Chromium to start. A serial
    # run starts both before its first test (start_ahead), while the databases are made and
    # the unit tests run.

    def __init__(self):
        self._idle = {}
        self._starting = []  # browsers started ahead, not yet given a role
        self._executor = None
        self._pid = None  # the process these browsers belong to, which quits them at its exit

    def start_ahead(self, count=2):
        """Start count browsers in the background now, for the first roles asked for."""
        self._own_process()
        self._starting.extend(self._executor.submit(start_browser) for _ in range(count))

    def acquire(self, role):
        """The warm browser for role (for example "edith" or "oni"), started on first use."""
        browser = self._idle.pop(role, None)
        if browser is not None:
            return browser
        self._own_process()
        if not self._starting:
            # The run's first browser: start it here, and a spare in the background.
            self.start_ahead(count=1)
            return start_browser()
        return self._starting.pop(0).result()

    def release(self, role, browser):
        """Keep browser for the next test class that needs a browser in this role."""
        if role in self._idle:
            browser.quit()
        else:
            self._idle[role] = browser

    def quit_all(self):
        while self._starting:
            starting = self._starting.pop()
            if starting.exception() is None:  # one that failed to start has nothing to quit
                self._idle[f"spare {len(self._starting)}"] = starting.result()
        while self._idle:
            _, browser = self._idle.popitem()
            browser.quit()

    def _own_process(self):
        # A --parallel worker is a fork of the process that imported this: what the parent
        # started (the threads of its executor included) is not the worker's to use.
        if self._pid == os.getpid():
            return
        self._idle, self._starting, self._pid = {}, [], os.getpid()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser-ahead")
        at_worker_exit(self.quit_all)


pool = BrowserPool()
