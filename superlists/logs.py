"""Log records that say which request they belong to, and a log file that makes its folder."""

import contextvars
import logging
import logging.handlers
from pathlib import Path

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
    """The client's address: nginx passes it in X-Real-IP, which clients cannot forge past it."""
    return request.META.get("HTTP_X_REAL_IP") or request.META.get("REMOTE_ADDR") or "-"


class LazyRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file handler that creates its folder and opens the file on the first error."""

    def __init__(self, filename, *args, **kwargs):
        kwargs["delay"] = True
        super().__init__(filename, *args, **kwargs)

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()
