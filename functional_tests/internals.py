"""Where the functional tests lean on Django's, unittest's and multiprocessing's internals.

Checked against Django 5.2.19 on Python 3.11.2 (Debian 12). None of the names below is a
documented API, so an upgrade can break them quietly; after one, check each against the new
source, as the notes say, and run `manage.py test --parallel 2 functional_tests`.

- The live server (django/test/testcases.py, django/core/servers/basehttp.py):
  `LiveServerThread.server_class` and `_create_server(connections_override)`,
  `ThreadedWSGIServer(address, handler, allow_reuse_address, connections_override)` and
  `QuietWSGIRequestHandler`.
- A test's own failures before its tearDown: unittest (3.11+) hands each error or failure to
  the result as it happens, before tearDown runs; the test sees them by wrapping the result
  it is run with. (Reading `self._outcome.result.errors` broke under `--parallel`: Django's
  RemoteTestResult keeps them in a DummyList, and `DummyList + DummyList` is a TypeError.)
- Browsers in `--parallel` workers: Django's ParallelTestSuite runs tests in a
  multiprocessing pool whose workers end with `os._exit()`, so `atexit` never runs there;
  `multiprocessing.util.Finalize` with an exit priority does, when the pool is closed.
"""

import multiprocessing.util
import traceback

from django.core.servers.basehttp import ThreadedWSGIServer
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler


class _OneRequestPerConnection(QuietWSGIRequestHandler):
    """Close the connection after each response."""

    # The warm browser outlives each class's live server; a kept-alive connection would
    # leave a request thread behind that touches the shared test database after teardown.
    protocol_version = "HTTP/1.0"


class _QuickToStopServer(ThreadedWSGIServer):
    """A live server that notices it should stop within 0.05 s, not the default 0.5 s."""

    def serve_forever(self, poll_interval=0.05):
        super().serve_forever(poll_interval)


class QuickLiveServerThread(LiveServerThread):
    """Django's live server thread, quick to stop and with one request per connection."""

    server_class = _QuickToStopServer

    def _create_server(self, connections_override=None):
        return self.server_class(
            (self.host, self.port),
            _OneRequestPerConnection,
            allow_reuse_address=False,
            connections_override=connections_override,
        )


class _NotingResult:
    """A test result that also keeps, for the test being run, its errors and failures."""

    def __init__(self, result, test, noted):
        self._result, self._test, self._noted = result, test, noted

    def __getattr__(self, name):
        return getattr(self._result, name)

    def _note(self, test, err):
        if test is self._test and err is not None:
            self._noted.append("".join(traceback.format_exception(*err)))

    def addError(self, test, err):
        self._note(test, err)
        self._result.addError(test, err)

    def addFailure(self, test, err):
        self._note(test, err)
        self._result.addFailure(test, err)

    def addSubTest(self, test, subtest, err):
        self._note(test, err)
        self._result.addSubTest(test, subtest, err)


class NotesItsFailures:
    """Test case mixin: self.failures_so_far() lists the test's failures, from its tearDown on."""

    def run(self, result=None):
        self._failures_so_far = []
        if result is None:
            return super().run()
        return super().run(_NotingResult(result, self, self._failures_so_far))

    def failures_so_far(self):
        """Each error or failure of this test so far, as traceback text."""
        return list(getattr(self, "_failures_so_far", ()))


def at_worker_exit(callback):
    """Call callback when this process ends, a --parallel test worker included."""
    # exitpriority makes it run at a normal interpreter exit too, like atexit.
    multiprocessing.util.Finalize(None, callback, exitpriority=10)
