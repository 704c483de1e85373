from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.core import mail

from accounts.models import User
from accounts.sessions import create_pre_authenticated_session
from superlists.tests.base import EDITH, ONI, SuperlistsTestCase

AUTH_KEYS = (SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY)


def stored_session(key):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)


class PreAuthenticatedSessionTest(SuperlistsTestCase):
    def test_returns_the_key_of_a_saved_session(self):
        key = create_pre_authenticated_session(EDITH)
        self.assertTrue(stored_session(key).exists(key))

    def test_creates_the_user_when_needed(self):
        create_pre_authenticated_session(EDITH)
        self.assertTrue(User.objects.filter(email=EDITH).exists())

    def test_reuses_an_existing_user_whatever_the_case_of_the_address(self):
        existing = User.objects.create(email=EDITH)
        key = create_pre_authenticated_session("Edith@Example.com")
        self.assertEqual(stored_session(key)[SESSION_KEY], str(existing.pk))
        self.assertEqual(User.objects.count(), 1)

    def test_session_holds_what_logging_in_by_email_link_puts_there(self):
        self.ask_for_login_email(EDITH)
        url, _ = self.login_link_in(mail.outbox[0])
        self.client.get(url)
        real = {key: self.client.session[key] for key in AUTH_KEYS}

        created = stored_session(create_pre_authenticated_session(EDITH))
        self.assertEqual({key: created[key] for key in AUTH_KEYS}, real)

    def test_session_holds_what_the_test_client_force_login_puts_there(self):
        self.client.force_login(User.objects.create(email=EDITH))
        forced = {key: self.client.session[key] for key in AUTH_KEYS}

        created = stored_session(create_pre_authenticated_session(EDITH))
        self.assertEqual({key: created[key] for key in AUTH_KEYS}, forced)

    def test_request_with_the_session_cookie_is_logged_in(self):
        key = create_pre_authenticated_session(EDITH)
        self.client.cookies[settings.SESSION_COOKIE_NAME] = key
        response = self.client.get("/")
        self.assertContains(response, f"Logged in as {EDITH}")
        self.assertEqual(response.wsgi_request.user.email, EDITH)

    def test_each_call_makes_a_separate_session(self):
        self.assertNotEqual(
            create_pre_authenticated_session(EDITH), create_pre_authenticated_session(ONI)
        )
