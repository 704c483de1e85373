"""Give each request an id that shows in every log line and in the X-Request-ID header."""

import os
import re
import secrets

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpResponseNotAllowed
from django.utils.functional import SimpleLazyObject

from superlists import identity
from superlists.logs import current_request, load_user
from superlists.views import method_not_allowed

# Accept an id from nginx (or a test) only if it looks like one, so logs cannot be forged.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        # Which app host, when the site runs on several behind a balancer.
        self.host = f"{settings.HOST_LABEL} " if settings.HOST_LABEL else ""

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = (
            incoming if REQUEST_ID_PATTERN.match(incoming) else secrets.token_hex(8)
        )
        token = current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(token)
        response["X-Request-ID"] = request.request_id
        # Which gunicorn worker answered: with several, state kept in one process's memory
        # shows up as a save through one pid and a page from another. A process id tells an
        # outsider nothing useful, and sending it everywhere lets the local FTs read it too.
        response["X-Served-By"] = f"{self.host}pid {os.getpid()}"
        return response


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's, with the lazy request.user loaded so that its own log lines don't recurse."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(
            lambda: load_user(lambda: auth_middleware.get_user(request))
        )


class StyledMethodNotAllowedMiddleware:
    """Turn the bare 405 of require_POST and friends into a page in the site's style."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if isinstance(response, HttpResponseNotAllowed):
            styled = method_not_allowed(request)
            styled["Allow"] = response["Allow"]
            return styled
        return response


class StagingSiteIdentityMiddleware:
    """On a staging site, say which site answered, so the FT tools can prove it is theirs."""

    def __init__(self, get_response):
        # Production sends nothing: decided once per process, so it costs nothing there.
        if not identity.is_staging():
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.value = identity.header_value()

    def __call__(self, request):
        response = self.get_response(request)
        response[identity.HEADER] = self.value
        return response
