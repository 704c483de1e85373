"""Log records that say which request they belong to, and a log file that makes its folder."""

import contextvars
import logging
import logging.handlers
import re
from pathlib import Path

from django.conf import settings

current_request = contextvars.ContextVar("current_request", default=None)
# Set while the visitor's user is loaded: loading may itself log (a session signed with a
# retired key is "corrupted"), and that record must not load the user again, recursively.
_loading_user = contextvars.ContextVar("_loading_user", default=False)


class RequestContextFilter(logging.Filter):
    """Stamp every record with the request id, client IP, method, path and user."""

    def filter(self, record):
        request = current_request.get()
        if request is None:
            # Django's own request loggers pass the request along with the record.
            request = getattr(record, "request", None)
            if not hasattr(request, "META"):
                request = None
        if request is None:
            record.request_id = record.client_ip = record.method = record.path = "-"
            record.user = "-"
            return True
        record.request_id = getattr(request, "request_id", "-")
        record.client_ip = client_ip(request)
        record.method = request.method
        record.path = request.path
        record.user = _user_label(request)
        return True


def _user_label(request):
    """Who the request's visitor is, for a log line; "-" while that is being found out."""
    user = getattr(request, "user", None)
    if user is None or _loading_user.get():
        return "-"
    return load_user(lambda: getattr(user, "email", None) or "anonymous")


def load_user(function):
    """Call function (which loads the visitor's user) with the filter told not to recurse."""
    loading = _loading_user.set(True)
    try:
        return function()
    finally:
        _loading_user.reset(loading)


def client_ip(request):
    """The client's address: X-Real-IP when the proxy (nginx) sent the request, else the peer's."""
    peer = request.META.get("REMOTE_ADDR", "")
    # gunicorn's unix socket (peer "") is reachable by nginx only; over TCP only a configured
    # proxy's header counts, else anyone reaching gunicorn could choose their own address.
    if not peer or peer in settings.TRUSTED_PROXIES:
        return request.META.get("HTTP_X_REAL_IP") or peer or "-"
    return peer


# Control characters (ESC, BEL, CR, LF…) from user input must not reach an operator's terminal
# raw through `fab logs`, nor forge log lines: they are written as \x1b, \x07, \n.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text, keep="\n"):
    """text with its control characters written as Python escapes, except those in keep."""
    return CONTROL_CHARACTERS.sub(
        lambda m: m[0] if m[0] in keep else m[0].encode("unicode_escape").decode(), text
    )


class EscapingFormatter(logging.Formatter):
    """Log lines with control characters escaped; a traceback keeps its line breaks."""

    def formatMessage(self, record):
        return escape_controls(super().formatMessage(record), keep="")

    def formatException(self, ei):
        return escape_controls(super().formatException(ei))

    def formatStack(self, stack_info):
        return escape_controls(super().formatStack(stack_info))


class OneLineFilter(logging.Filter):
    """A logger's records as one WARNING line, without traceback (e.g. DisallowedHost)."""

    # Scanners send foreign Host headers by the thousand: as ERRORs with a 1 KB traceback each
    # they rotated the real errors out of error.log.

    def filter(self, record):
        record.exc_info = record.exc_text = None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class LazyRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file handler that creates its folder and opens the file on the first error."""

    def __init__(self, filename, *args, **kwargs):
        kwargs["delay"] = True
        super().__init__(filename, *args, **kwargs)

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()
