from django.contrib.auth import authenticate

from accounts.authentication import PasswordlessAuthenticationBackend
from accounts.models import LoginToken, User
from superlists.tests.base import EDITH, SuperlistsTestCase


class AuthenticateTest(SuperlistsTestCase):
    def test_good_token_returns_a_new_user_for_an_unknown_address(self):
        _, raw_token = LoginToken.objects.issue(EDITH)
        user = PasswordlessAuthenticationBackend().authenticate(None, token=raw_token)
        self.assertEqual(user, User.objects.get(email=EDITH))

    def test_good_token_returns_the_existing_user(self):
        existing = User.objects.create(email=EDITH)
        _, raw_token = LoginToken.objects.issue("Edith@Example.com")
        user = PasswordlessAuthenticationBackend().authenticate(None, token=raw_token)
        self.assertEqual(user, existing)
        self.assertEqual(User.objects.count(), 1)

    def test_bad_tokens_return_none_and_log_the_reason_at_debug(self):
        _, raw_token = LoginToken.objects.issue(EDITH)
        PasswordlessAuthenticationBackend().authenticate(None, token=raw_token)
        for token, reason in [(raw_token, "already used"), ("bogus", "unknown"), ("", "no token")]:
            with (
                self.subTest(reason=reason),
                self.assertLogs("accounts.authentication", "DEBUG") as logs,
            ):
                self.assertIsNone(PasswordlessAuthenticationBackend().authenticate(None, token))
            self.assertIn(reason, logs.output[0])

    def test_bad_token_creates_no_user(self):
        PasswordlessAuthenticationBackend().authenticate(None, token="bogus")
        self.assertFalse(User.objects.exists())

    def test_is_the_configured_backend_behind_django_authenticate(self):
        _, raw_token = LoginToken.objects.issue(EDITH)
        self.assertEqual(authenticate(None, token=raw_token).email, EDITH)

    def test_password_style_credentials_log_nobody_in(self):
        User.objects.create(email=EDITH)
        self.assertIsNone(authenticate(None, username=EDITH, password="anything"))


class GetUserTest(SuperlistsTestCase):
    def test_gets_user_by_id(self):
        user = User.objects.create(email=EDITH)
        self.assertEqual(PasswordlessAuthenticationBackend().get_user(user.pk), user)

    def test_returns_none_for_an_unknown_id(self):
        self.assertIsNone(PasswordlessAuthenticationBackend().get_user(404))
