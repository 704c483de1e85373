"""FT code drives the site, never its database: a query from a test's own thread fails at once.

On staging the ORM reaches the local test database, not the server's, so a test that reads it
sees stale or no data; locally the same query would pass and hide that. The server objects
are the one way in: LocalServer's methods wrap their queries in `server_side()`.
"""

import contextlib
import contextvars
import threading

from django.db import connections

_server_side = contextvars.ContextVar("server_side", default=False)

ADVICE = (
    "Functional test code queried the database directly ({sql}…). On staging that reads this "
    "machine's test database, not the server's, so the test would see stale or no data. "
    "Drive the site through the browser and ask self.server (reset, create_session, "
    "wait_for_email, log_records) for anything else; a new need is a new method on both "
    "servers in functional_tests/server.py."
)


class DirectQueryError(AssertionError):
    """An FT queried the ORM itself instead of going through the server object."""


@contextlib.contextmanager
def server_side():
    """Let the server object's own code use the ORM."""
    token = _server_side.set(True)
    try:
        yield
    finally:
        _server_side.reset(token)


@contextlib.contextmanager
def forbid_direct_queries():
    """While active, a query from this thread outside server_side() raises DirectQueryError."""
    # The live server answers the browser from its own threads, sharing an in-memory SQLite
    # connection with this one: only this thread's queries are the test's own.
    test_thread = threading.get_ident()

    def guard(execute, sql, params, many, context):
        if threading.get_ident() == test_thread and not _server_side.get():
            raise DirectQueryError(ADVICE.format(sql=" ".join(str(sql).split())[:60]))
        return execute(sql, params, many, context)

    with contextlib.ExitStack() as stack:
        for connection in connections.all():
            stack.enter_context(connection.execute_wrapper(guard))
        yield
