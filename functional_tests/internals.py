"""Where the functional tests lean on Django's, unittest's and multiprocessing's internals.

Checked against Django 5.2.19 on Python 3.11.2 (Debian 12); the shared live server's names
against Django 5.2.20. None of the names below is a
documented API, so an upgrade can break them quietly; after one, check each against the new
source, as the notes say, and run `manage.py test --parallel 2 functional_tests`.

- The live server (django/test/testcases.py, django/core/servers/basehttp.py):
  `LiveServerThread.server_class` and `_create_server(connections_override)`,
  `ThreadedWSGIServer(address, handler, allow_reuse_address, connections_override)` and
  `QuietWSGIRequestHandler`; `LiveServerTestCase._start_server_thread()` (which starts a
  server per test class, and registers its stop as a class cleanup),
  `_make_connections_override()`, `_create_server_thread(connections_override)` and
  `server_thread.terminate()`.
- A test's own failures before its tearDown: unittest (3.11+) hands each error or failure to
  the result as it happens, before tearDown runs; the test sees them by wrapping the result
  it is run with. (Reading `self._outcome.result.errors` broke under `--parallel`: Django's
  RemoteTestResult keeps them in a DummyList, and `DummyList + DummyList` is a TypeError.)
- Browsers in `--parallel` workers: Django's ParallelTestSuite runs tests in a
  multiprocessing pool whose workers end with `os._exit()`, so `atexit` never runs there;
  `multiprocessing.util.Finalize` with an exit priority does, when the pool is closed.
"""

import multiprocessing.util
import os
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


class OneLiveServerPerProcess:
    """LiveServerTestCase mixin: every class in a process shares one live server, one address.

    Django starts a server on a new port for each test class. To the browsers, which outlive
    the classes, each port is a new origin, so the first page of every class fetched the
    stylesheets (230 kB) again, through this process's Python. One address for the whole run
    keeps them in the browser's cache; each test still starts with an empty database and a
    visitor with no cookies or storage.
    """

    _shared_servers = {}  # (process id, the server's kind) -> its live server thread

    @classmethod
    def _start_server_thread(cls):
        # Per process: a --parallel worker is a fork of the process that may have started one.
        # Classes that serve differently (no static files, say) get a server of their own.
        key = (os.getpid(), cls.host, cls.port, cls.static_handler, cls.server_thread_class)
        thread = cls._shared_servers.get(key)
        if thread is None:
            connections_override = cls._make_connections_override()
            for connection in connections_override.values():
                connection.inc_thread_sharing()
            thread = cls._create_server_thread(connections_override)
            thread.daemon = True
            thread.start()
            thread.is_ready.wait()
            if thread.error:
                raise thread.error
            cls._shared_servers[key] = thread
            at_worker_exit(_stop_server, thread)
        cls.server_thread = thread


def _stop_server(thread):
    thread.terminate()
    for connection in thread.connections_override.values():
        connection.dec_thread_sharing()


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


def at_worker_exit(callback, *args):
    """Call callback(*args) when this process ends, a --parallel test worker included."""
    # exitpriority makes it run at a normal interpreter exit too, like atexit.
    multiprocessing.util.Finalize(None, callback, args, exitpriority=10)
