"""Log records that say which request they belong to, and a log file that makes its folder."""

import contextvars
import logging
import logging.handlers
from pathlib import Path

current_request = contextvars.ContextVar("current_request", default=None)


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
        user = getattr(request, "user", None)
        record.user = getattr(user, "email", None) or "anonymous" if user is not None else "-"
        return True


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
