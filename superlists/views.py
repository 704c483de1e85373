"""Error pages in the site's own style."""

from django.shortcuts import render


def _error_page(request, status, title, message, hide_nav=False):
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message, "hide_nav": hide_nav},
        status=status,
    )


def bad_request(request, exception=None):
    return _error_page(request, 400, "Bad request", "That request didn't make sense to us.")


def permission_denied(request, exception=None):
    return _error_page(request, 403, "Forbidden", "You're not allowed to do that.")


def method_not_allowed(request):
    return _error_page(
        request,
        405,
        "Method not allowed",
        "That page can't be used that way. Please use the forms on the site.",
    )


def page_not_found(request, exception=None):
    return _error_page(
        request, 404, "Page not found", "There's nothing here. Maybe the link is wrong or old?"
    )


def server_error(request):
    return _error_page(
        request,
        500,
        "Something went wrong",
        "Sorry, that's our fault. Please try again.",
        # The failure may be the database itself: don't ask it who is logged in.
        hide_nav=True,
    )


def csrf_failure(request, reason=""):
    return _error_page(
        request,
        403,
        "Form expired",
        "This form was open too long or came from somewhere else. "
        "Please go back, reload the page and try again.",
    )
