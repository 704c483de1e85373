import hashlib
import secrets
from unittest import mock

from django.db import IntegrityError, connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from accounts.models import (
    InvalidToken,
    LoginEmailEvent,
    LoginToken,
    LoginTokenQuerySet,
    User,
    normalize_email,
)
from superlists.tests.base import EDITH, ONI, SuperlistsTestCase


class UserTest(SuperlistsTestCase):
    def test_user_is_identified_by_email_alone(self):
        user = User.objects.create(email=EDITH)
        self.assertEqual(str(user), EDITH)
        self.assertTrue(user.is_authenticated)

    def test_two_users_cannot_share_an_email(self):
        User.objects.create(email=EDITH)
        with self.assertRaises(IntegrityError):
            User.objects.create(email=EDITH)

    def test_emails_differing_only_in_case_normalize_to_one_address(self):
        self.assertEqual(normalize_email("  Edith@Example.COM "), EDITH)
        self.assertEqual(normalize_email("Edith@Example.com"), normalize_email(EDITH))


class LoginTokenTest(SuperlistsTestCase):
    def test_token_has_at_least_128_random_bits_from_secrets(self):
        with mock.patch("accounts.models.secrets.token_urlsafe", wraps=secrets.token_urlsafe) as m:
            _, raw_token = LoginToken.objects.issue(EDITH)
        (nbytes,) = m.call_args.args
        self.assertGreaterEqual(nbytes * 8, 128)
        self.assertGreaterEqual(len(raw_token), 22)

    def test_every_token_is_different(self):
        tokens = {LoginToken.objects.issue(EDITH)[1] for _ in range(20)}
        self.assertEqual(len(tokens), 20)

    def test_only_a_hash_of_the_token_is_stored(self):
        row, raw_token = LoginToken.objects.issue(EDITH)
        row.refresh_from_db()
        self.assertEqual(row.token_hash, hashlib.sha256(raw_token.encode()).hexdigest())
        stored = [str(value) for value in LoginToken.objects.values().get().values()]
        self.assertFalse(any(raw_token in value for value in stored), stored)

    def test_stored_hash_does_not_work_as_a_token(self):
        row, _ = LoginToken.objects.issue(EDITH)
        with self.assertRaisesMessage(InvalidToken, "unknown token"):
            LoginToken.objects.consume(row.token_hash)

    def test_token_is_stored_for_the_normalized_address(self):
        row, _ = LoginToken.objects.issue("Edith@Example.com")
        self.assertEqual(row.email, EDITH)

    def test_consuming_a_token_returns_its_email_and_marks_it_used(self):
        row, raw_token = LoginToken.objects.issue(EDITH)
        self.assertEqual(LoginToken.objects.consume(raw_token), EDITH)
        row.refresh_from_db()
        self.assertIsNotNone(row.used_at)

    def test_token_works_only_once(self):
        _, raw_token = LoginToken.objects.issue(EDITH)
        LoginToken.objects.consume(raw_token)
        with self.assertRaisesMessage(InvalidToken, "already used"):
            LoginToken.objects.consume(raw_token)

    def test_token_is_marked_used_by_one_conditional_update(self):
        _, raw_token = LoginToken.objects.issue(EDITH)
        with CaptureQueriesContext(connection) as queries:
            LoginToken.objects.consume(raw_token)
        updates = [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]
        self.assertEqual(len(updates), 1, updates)
        self.assertIn('"used_at" IS NULL', updates[0])

    def test_token_used_by_another_worker_after_it_was_read_is_refused(self):
        row, raw_token = LoginToken.objects.issue(EDITH)
        stale_copy = LoginToken.objects.get(pk=row.pk)
        LoginToken.objects.consume(raw_token)
        # This worker read the row before the other one used it.
        with (
            mock.patch.object(LoginTokenQuerySet, "first", return_value=stale_copy),
            self.assertRaisesMessage(InvalidToken, "already used"),
        ):
            LoginToken.objects.consume(raw_token)

    @override_settings(LOGIN_TOKEN_MAX_AGE=600)
    def test_token_still_works_just_before_max_age(self):
        _, raw_token = LoginToken.objects.issue(EDITH)
        with self.clock_moved(seconds=599):
            self.assertEqual(LoginToken.objects.consume(raw_token), EDITH)

    @override_settings(LOGIN_TOKEN_MAX_AGE=600)
    def test_token_expires_after_max_age(self):
        _, raw_token = LoginToken.objects.issue(EDITH)
        with self.clock_moved(seconds=600), self.assertRaisesMessage(InvalidToken, "expired"):
            LoginToken.objects.consume(raw_token)

    def test_expired_token_is_not_marked_used(self):
        row, raw_token = LoginToken.objects.issue(EDITH)
        with self.clock_moved(hours=2), self.assertRaises(InvalidToken):
            LoginToken.objects.consume(raw_token)
        row.refresh_from_db()
        self.assertIsNone(row.used_at)

    def test_bogus_and_missing_tokens_are_invalid(self):
        LoginToken.objects.issue(EDITH)
        for bogus in ["", None, "nonsense", "x" * 5000, "\u00e9\udc80"]:
            with self.subTest(token=bogus), self.assertRaises(InvalidToken):
                LoginToken.objects.consume(bogus)

    def test_issuing_a_token_clears_out_expired_ones(self):
        LoginToken.objects.issue(EDITH)
        with self.clock_moved(hours=2):
            LoginToken.objects.issue(ONI)
        self.assertEqual(list(LoginToken.objects.values_list("email", flat=True)), [ONI])


@override_settings(LOGIN_EMAILS_PER_HOUR=5)
class LoginEmailEventTest(SuperlistsTestCase):
    def record(self, email=EDITH, ip="192.0.2.1"):
        return LoginEmailEvent.objects.record_if_allowed(email, ip)

    def test_allows_the_hourly_limit_per_address_and_then_refuses(self):
        allowed = [self.record(ip=f"192.0.2.{n}") for n in range(6)]
        self.assertTrue(all(allowed[:5]))
        self.assertIsNone(allowed[5])

    def test_address_limit_ignores_case(self):
        for _ in range(5):
            self.record("Edith@Example.com")
        self.assertIsNone(self.record(EDITH))

    def test_refused_attempt_leaves_no_row(self):
        for _ in range(6):
            self.record()
        self.assertEqual(LoginEmailEvent.objects.count(), 5)

    def test_per_ip_limit_is_four_times_the_per_address_limit(self):
        allowed = [self.record(email=f"user{n}@example.com") for n in range(21)]
        self.assertTrue(all(allowed[:20]))
        self.assertIsNone(allowed[20])

    def test_other_addresses_and_ips_are_not_affected(self):
        for _ in range(5):
            self.record()
        self.assertIsNotNone(self.record(email=ONI, ip="198.51.100.7"))

    def test_events_older_than_an_hour_no_longer_count(self):
        for _ in range(5):
            self.record()
        with self.clock_moved(minutes=59):
            self.assertIsNone(self.record())
        with self.clock_moved(minutes=61):
            self.assertIsNotNone(self.record())

    def test_events_are_kept_in_the_database_every_worker_shares(self):
        self.record(email="Edith@Example.com", ip="203.0.113.9")
        event = LoginEmailEvent.objects.get()
        self.assertEqual((event.email, event.ip), (EDITH, "203.0.113.9"))
