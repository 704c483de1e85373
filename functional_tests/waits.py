"""Waiting for the browser (or a mailbox): one retry helper with short polling."""

import contextlib
import contextvars

from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.support.wait import WebDriverWait

TIMEOUT = 5
POLL = 0.05

# What a failed wait calls to name the cause: set by the FT base for each test.
_explain = contextvars.ContextVar("explain", default=None)


@contextlib.contextmanager
def explained_by(explain):
    """While active, a wait that times out starts its message with explain()'s sentences."""
    token = _explain.set(explain)
    try:
        yield
    finally:
        _explain.reset(token)


def with_cause(message):
    """message, after the sentences naming its cause when they can be known."""
    explain = _explain.get()
    causes = explain() if explain else []
    return "\n".join([*causes, message])


def wait_for(check, what, timeout=TIMEOUT):
    """Retry check() until it stops failing and return its result, or fail saying what it saw."""
    seen = {"last": "nothing yet"}

    def attempt(_):
        try:
            # A tuple is always truthy, so a check that returns None or False still succeeds.
            return (check(),)
        except (AssertionError, WebDriverException, LookupError) as error:
            # WebDriver messages end in a long native stack trace: keep just the message.
            message = error.msg if isinstance(error, WebDriverException) else error
            seen["last"] = f"{type(error).__name__}: {message}".strip()
            return False

    try:
        return WebDriverWait(None, timeout, poll_frequency=POLL).until(attempt)[0]
    except TimeoutException:
        waited = f"Waited {timeout:g} s for {what}; last saw {seen['last']}"
        raise AssertionError(with_cause(waited)) from None
