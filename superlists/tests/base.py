"""The cast and the helpers every app's tests share: people, lists, emails, messages, time."""

import contextlib
import html
import re
from datetime import timedelta
from functools import cached_property
from unittest import mock

from django.core import mail
from django.test import TestCase
from django.utils import timezone

from accounts.models import User
from lists.models import Item, List

EDITH = "edith@example.com"
ONI = "oni@example.com"
STRANGER = "stranger@example.com"
LOGIN_LINK = re.compile(r"(?P<url>https?://\S+/accounts/login\?token=(?P<token>[\w-]+)\S*)")
ALERT = re.compile(r'<div class="alert [^"]*" role="alert">(.*?)</div>', re.S)


def shown_messages(response):
    """The texts of the messages a page shows its visitor, in order."""
    return [html.unescape(text) for text in ALERT.findall(response.content.decode())]


class SuperlistsTestCase(TestCase):
    """The cast: Edith keeps lists and shares them with her friend Oni; a stranger is nobody.

    Who sees what: anyone sees a list made without logging in; a list someone owns is seen
    by its owner and by those it is shared with, and never by the stranger. Only the owner
    shares it. Each person's User is made when a test first names them (self.edith), so a
    test of signing up starts with nobody.
    """

    @cached_property
    def edith(self):
        return self.person(EDITH)

    @cached_property
    def oni(self):
        return self.person(ONI)

    @cached_property
    def stranger(self):
        return self.person(STRANGER)

    def person(self, email):
        """The User for an address, made on first use."""
        return User.objects.get_or_create(email=email)[0]

    def make_list(self, *texts, owner=None, shared_with=()):
        """A list holding these items, owned by owner (None: made without logging in)."""
        new = List.objects.create(owner=owner)
        for text in texts:
            Item.objects.create(list=new, text=text)
        new.shared_with.add(*shared_with)
        return new

    # Email: the login emails, read from Django's outbox.

    def ask_for_login_email(self, email=EDITH, ip="192.0.2.10", **extra):
        """POST the navbar's login form, as a visitor from the given client IP."""
        return self.client.post(
            "/accounts/send_login_email", {"email": email, **extra}, HTTP_X_REAL_IP=ip
        )

    def assert_one_login_email_to(self, address):
        """The single email sent so far went to address; return it."""
        self.assertEqual(len(mail.outbox), 1, [m.to for m in mail.outbox])
        message = mail.outbox[0]
        self.assertEqual(message.to, [address])
        return message

    def login_link_in(self, message):
        match = LOGIN_LINK.search(message.body)
        self.assertIsNotNone(match, f"no login link in:\n{message.body}")
        return match["url"], match["token"]

    def messages_for(self, response):
        """The messages shown on the page a response redirects to (which uses them up)."""
        self.assertEqual(response.status_code, 302)
        next_page = self.client.get(response["Location"])
        return shown_messages(next_page)

    # Time, without sleeping: the site asks accounts.clock for it.

    @contextlib.contextmanager
    def clock_moved(self, **delta):
        """Run the block as if that much time had passed since now."""
        later = timezone.now() + timedelta(**delta)
        with mock.patch("accounts.clock.now", return_value=later):
            yield later
