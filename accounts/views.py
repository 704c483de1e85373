import logging
import smtplib
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import auth, messages
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.forms import LoginEmailForm
from accounts.models import LoginEmailEvent, LoginToken
from superlists.logs import client_ip

logger = logging.getLogger(__name__)

CHECK_EMAIL_MESSAGE = "Check your email, we've sent you a link you can use to log in."
INVALID_LINK_MESSAGE = "Invalid login link, please request a new one"
MAIL_FAILED_MESSAGE = "We couldn't send your login email, please try again in a few minutes."
EMAIL_SUBJECT = "Your login link for Superlists"
# The link is the last line: readers of "TDD with Python" find it with r"http://.+/.+$".
EMAIL_BODY = """The link below works once, within {validity}. If you didn't ask to log in to
Superlists, you can ignore this email.

Use this link to log in:

{url}
"""


@require_POST
def send_login_email(request):
    form = LoginEmailForm(data=request.POST)
    next_path = _next_path(request)
    if not form.is_valid():
        return render(
            request, "accounts/login_email_form.html", {"form": form, "next": next_path}, status=400
        )
    email = form.cleaned_data["email"]

    # The answer is the same whether or not we know the address, and whether or not a limit
    # stopped the email: the page must not tell anyone which addresses have accounts.
    event = LoginEmailEvent.objects.record_if_allowed(email, client_ip(request))
    if event is None:
        logger.warning("Login email to %s not sent: over the hourly limit", email)
        messages.success(request, CHECK_EMAIL_MESSAGE)
        return redirect(next_path)

    token, raw_token = LoginToken.objects.issue(email)
    url = f"{_site_url(request)}{reverse('login')}?{urlencode(_login_query(raw_token, next_path))}"
    body = EMAIL_BODY.format(url=url, validity=_duration(settings.LOGIN_TOKEN_MAX_AGE))
    try:
        send_mail(EMAIL_SUBJECT, body, None, [email])
    except (smtplib.SMTPException, OSError):
        # Typically a server missing its EMAIL_PASSWORD, or a mail server that is down. The
        # unsent token must not stay usable, and an email that was never sent does not count
        # towards the visitor's hourly limit.
        logger.exception("Could not send the login email to %s", email)
        token.delete()
        event.delete()
        messages.error(request, MAIL_FAILED_MESSAGE)
        return redirect(next_path)

    messages.success(request, CHECK_EMAIL_MESSAGE)
    return redirect(next_path)


@never_cache
@require_GET
def admin_login(request):
    """The admin's login page: the emailed-link form, back to the admin once logged in."""
    if request.user.is_authenticated:
        # Logged in but not staff (staff never get here): the admin is not for them.
        raise PermissionDenied("Not staff")
    next_path = _safe_next(request.GET.get("next", ""))
    form = LoginEmailForm()
    return render(request, "accounts/login_email_form.html", {"form": form, "next": next_path})


def _site_url(request):
    """The address login links start with: SITE_URL; in development, unset, runserver's."""
    # Servers always have a SITE_URL (settings give one when DEBUG is off): there, a forged
    # Host header would send a working token to the forger's site.
    return settings.SITE_URL or request.build_absolute_uri("/").rstrip("/")


def _login_query(raw_token, next_path):
    """The login link's query: the token, and the page to land on when it is not home."""
    # The token first, so the link still reads /accounts/login?token=… as the emails always did.
    query = {"token": raw_token}
    if next_path != "/":
        query["next"] = next_path
    return query


def _next_path(request):
    """Back to the page the visitor asked from, if it is a page of this site; else home."""
    return _safe_next(request.POST.get("next", ""))


def _safe_next(candidate):
    """candidate if it is a page of this site the visitor can be sent back to, else home."""
    if not candidate.startswith("/") or not url_has_allowed_host_and_scheme(
        candidate, allowed_hosts=None
    ):
        return "/"
    if urlsplit(candidate).path in {
        reverse(name) for name in ("send_login_email", "login", "logout")
    }:
        return "/"
    return candidate


def _duration(seconds):
    """A validity in words: 3600 is "1 hour", 900 is "15 minutes"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


# HEAD is refused too: link checkers that only HEAD the URL then leave the token alone.
@never_cache
@require_GET
def login(request):
    # Opening the link uses the token up. Some mail scanners fetch links before the person
    # does and so burn the token; the alternative (a confirm button that POSTs) costs every
    # visitor a click. We accept the trade-off: the visitor sees "Invalid login link" and
    # asks again. The link works in any browser, not only the one it was asked from.
    raw_token, next_path = request.GET.get("token", ""), _safe_next(request.GET.get("next", ""))
    if request.user.is_authenticated:
        # Someone else's link, opened while logged in, is how login CSRF switches a victim to
        # the attacker's account: ask first, and leave the token usable until they confirm.
        email = LoginToken.objects.email_if_usable(raw_token)
        if email is not None and email != request.user.email:
            context = {"email": email, "token": raw_token, "next": next_path}
            response = render(request, "accounts/confirm_login.html", context)
            # This page's address holds a usable token: no Referer may carry it to a log.
            response["Referrer-Policy"] = "no-referrer"
            return response
    return _log_in_with(request, raw_token, next_path)


@never_cache
@require_POST
def confirm_login(request):
    return _log_in_with(
        request, request.POST.get("token", ""), _safe_next(request.POST.get("next", ""))
    )


def _log_in_with(request, raw_token, next_path):
    """Log in the token's user and go to next_path; or say the link is invalid, at home."""
    user = auth.authenticate(request, token=raw_token)
    if user is None:
        messages.error(request, INVALID_LINK_MESSAGE)
        return redirect("/")
    auth.login(request, user)
    return redirect(next_path)


@require_POST
def logout(request):
    auth.logout(request)
    return redirect("/")
