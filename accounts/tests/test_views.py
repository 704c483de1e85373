import re
import smtplib
from unittest import mock

from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY
from django.core import mail
from django.test import Client, override_settings

from accounts.forms import INVALID_EMAIL_ERROR
from accounts.models import LoginToken, User
from accounts.views import (
    CHECK_EMAIL_MESSAGE,
    INVALID_LINK_MESSAGE,
    MAIL_FAILED_MESSAGE,
)
from superlists.tests.base import EDITH, ONI, SuperlistsTestCase, shown_messages

SEND_MESSAGES = "django.core.mail.backends.locmem.EmailBackend.send_messages"
MAIL_FAILURES = [
    smtplib.SMTPSenderRefused(530, b"5.7.0 Authentication required", "noreply@superlists.test"),
    smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid"),
    ConnectionRefusedError(111, "Connection refused"),
    # What socket.timeout is since Python 3.10.
    TimeoutError("timed out"),
]


@override_settings(SITE_URL="https://superlists.example", DEFAULT_FROM_EMAIL="noreply@x.test")
class SendLoginEmailTest(SuperlistsTestCase):
    def test_sends_a_login_email_to_the_address_given(self):
        self.ask_for_login_email(EDITH)
        self.assert_one_login_email_to(EDITH)

    def test_email_has_the_subject_and_the_link_to_log_in(self):
        self.ask_for_login_email(EDITH)
        message = self.assert_one_login_email_to(EDITH)
        self.assertEqual(message.subject, "Your login link for Superlists")
        self.assertIn("Use this link to log in:", message.body)
        url, token = self.login_link_in(message)
        self.assertEqual(url, f"https://superlists.example/accounts/login?token={token}")

    def test_login_link_is_the_last_line_of_the_email(self):
        self.ask_for_login_email(EDITH)
        message = self.assert_one_login_email_to(EDITH)
        url, _ = self.login_link_in(message)
        self.assertEqual(message.body.splitlines()[-3:], ["Use this link to log in:", "", url])
        # How the book's FT finds the link: the one at the very end of the body.
        self.assertEqual(re.search(r"https?://.+/.+$", message.body)[0], url)

    def test_email_comes_from_the_configured_sender(self):
        self.ask_for_login_email(EDITH)
        self.assertEqual(mail.outbox[0].from_email, "noreply@x.test")

    @override_settings(LOGIN_TOKEN_MAX_AGE=900)
    def test_email_says_how_long_the_link_works(self):
        self.ask_for_login_email(EDITH)
        self.assertIn("within 15 minutes", mail.outbox[0].body)

    @override_settings(ALLOWED_HOSTS=["attacker.example", "testserver"])
    def test_link_is_built_from_the_site_url_not_the_host_header(self):
        self.client.post(
            "/accounts/send_login_email", {"email": EDITH}, HTTP_HOST="attacker.example"
        )
        url, _ = self.login_link_in(mail.outbox[0])
        self.assertTrue(url.startswith("https://superlists.example/accounts/login?token="))
        self.assertNotIn("attacker", mail.outbox[0].body)

    @override_settings(SITE_URL="")
    def test_in_development_the_link_follows_the_address_runserver_serves(self):
        self.client.post("/accounts/send_login_email", {"email": EDITH}, HTTP_HOST="localhost:8123")
        url, token = self.login_link_in(mail.outbox[0])
        self.assertEqual(url, f"http://localhost:8123/accounts/login?token={token}")

    def test_in_development_a_site_url_that_is_set_still_wins(self):
        self.client.post("/accounts/send_login_email", {"email": EDITH}, HTTP_HOST="localhost:8123")
        url, _ = self.login_link_in(mail.outbox[0])
        self.assertTrue(url.startswith("https://superlists.example/accounts/login?token="))

    def test_says_check_your_email_and_redirects_home(self):
        response = self.ask_for_login_email(EDITH)
        self.assertEqual(response["Location"], "/")
        self.assertEqual(self.messages_for(response), [CHECK_EMAIL_MESSAGE])

    def test_check_your_email_shows_on_the_next_page(self):
        response = self.client.post("/accounts/send_login_email", {"email": EDITH}, follow=True)
        self.assertContains(response, "Check your email, we&#39;ve sent you a link")

    def test_same_answer_for_known_and_unknown_addresses(self):
        User.objects.create(email=EDITH)
        answers = []
        for email in [EDITH, ONI]:
            response = self.ask_for_login_email(email)
            answers.append(
                (response.status_code, response["Location"], self.messages_for(response))
            )
        self.assertEqual(answers[0], answers[1])
        self.assertEqual(len(mail.outbox), 2)

    def test_asking_for_a_link_creates_no_user(self):
        self.ask_for_login_email(EDITH)
        self.assertFalse(User.objects.exists())

    def test_address_is_normalized_before_sending(self):
        self.ask_for_login_email("  Edith@Example.COM ")
        self.assert_one_login_email_to(EDITH)
        self.assertEqual(LoginToken.objects.get().email, EDITH)

    def test_redirects_back_to_the_page_the_visitor_was_on(self):
        response = self.ask_for_login_email(EDITH, next="/lists/abc123/")
        self.assertRedirects(response, "/lists/abc123/", fetch_redirect_response=False)

    def test_never_redirects_to_another_site(self):
        for unsafe in ["https://evil.example/", "//evil.example/", "/\\evil.example", "lists/"]:
            with self.subTest(next=unsafe):
                response = self.ask_for_login_email(EDITH, next=unsafe)
                self.assertRedirects(response, "/")

    def test_junk_in_next_never_breaks_the_redirect(self):
        for junk in ["/lists/\r\nSet-Cookie: x=1", "/" + "a" * 5000, "\x00/", "/%0d%0a"]:
            with self.subTest(next=junk[:30]):
                response = self.ask_for_login_email(EDITH, next=junk)
                self.assertEqual(response.status_code, 302)
                self.assertNotIn("\n", response["Location"])

    def test_does_not_redirect_back_to_a_post_only_page(self):
        response = self.ask_for_login_email(EDITH, next="/accounts/send_login_email")
        self.assertRedirects(response, "/")

    def test_invalid_address_gets_the_form_back_with_its_error_and_no_mail(self):
        for bad in ["not-an-email", "edith@", "", "a" * 250 + "@example.com"]:
            with self.subTest(email=bad):
                response = self.ask_for_login_email(bad)
                self.assertEqual(response.status_code, 400)
                self.assertContains(response, 'id="id_login_page_form"', status_code=400)
                self.assertContains(response, INVALID_EMAIL_ERROR, status_code=400)
        self.assertEqual(mail.outbox, [])
        self.assertFalse(LoginToken.objects.exists())

    def test_missing_email_field_gets_the_form_error(self):
        response = self.client.post("/accounts/send_login_email", {})
        self.assertContains(response, INVALID_EMAIL_ERROR, status_code=400)
        self.assertEqual(mail.outbox, [])

    def test_get_gets_a_styled_405_and_sends_nothing(self):
        response = self.client.get("/accounts/send_login_email", {"email": EDITH})
        self.assertEqual(response.status_code, 405)
        self.assertEqual(response["Allow"], "POST")
        self.assertContains(response, 'id="id_error_page"', status_code=405)
        self.assertEqual(mail.outbox, [])


@override_settings(LOGIN_EMAILS_PER_HOUR=2)
class LoginEmailRateLimitTest(SuperlistsTestCase):
    def test_over_the_address_limit_no_mail_is_sent(self):
        for n in range(3):
            self.ask_for_login_email(EDITH, ip=f"192.0.2.{n}")
        self.assertEqual(len(mail.outbox), 2)

    def test_over_the_limit_the_answer_is_the_same(self):
        answers = []
        for _ in range(3):
            response = self.ask_for_login_email(EDITH)
            answers.append(
                (response.status_code, response["Location"], self.messages_for(response))
            )
        self.assertEqual(len(mail.outbox), 2)
        self.assertEqual(answers[2], answers[0])
        self.assertEqual(answers[2], (302, "/", [CHECK_EMAIL_MESSAGE]))

    def test_over_the_limit_the_refusal_is_logged(self):
        for _ in range(2):
            self.ask_for_login_email(EDITH)
        with self.assertLogs("accounts.views", "WARNING") as logs:
            self.ask_for_login_email(EDITH)
        self.assertIn(f"Login email to {EDITH} not sent: over the hourly limit", logs.output[0])

    def test_over_the_limit_no_token_is_issued(self):
        for _ in range(3):
            self.ask_for_login_email(EDITH)
        self.assertEqual(LoginToken.objects.count(), 2)

    def test_per_client_ip_limit_is_four_times_the_address_limit(self):
        for n in range(9):
            self.ask_for_login_email(f"user{n}@example.com", ip="203.0.113.5")
        self.assertEqual(len(mail.outbox), 8)

    def test_client_ip_comes_from_x_real_ip(self):
        for n in range(8):
            self.ask_for_login_email(f"user{n}@example.com", ip="203.0.113.5")
        self.ask_for_login_email(ONI, ip="198.51.100.1")
        self.assertEqual(mail.outbox[-1].to, [ONI])

    def test_limit_counts_the_address_whatever_its_case(self):
        for spelling in ["Edith@Example.com", "EDITH@example.com", EDITH]:
            self.ask_for_login_email(spelling)
        self.assertEqual(len(mail.outbox), 2)

    def test_an_hour_later_emails_are_sent_again(self):
        for _ in range(3):
            self.ask_for_login_email(EDITH)
        with self.clock_moved(minutes=61):
            self.ask_for_login_email(EDITH)
        self.assertEqual(len(mail.outbox), 3)

    def test_failed_sends_do_not_count_towards_the_limit(self):
        with mock.patch(SEND_MESSAGES, side_effect=ConnectionRefusedError), self.assertLogs():
            for _ in range(3):
                self.ask_for_login_email(EDITH)
        self.ask_for_login_email(EDITH)
        self.assertEqual(len(mail.outbox), 1)


class MailServerFailureTest(SuperlistsTestCase):
    def test_visitor_sees_a_friendly_message(self):
        for error in MAIL_FAILURES:
            with (
                self.subTest(error=repr(error)),
                mock.patch(SEND_MESSAGES, side_effect=error),
                self.assertLogs("accounts.views", "ERROR"),
            ):
                response = self.client.post(
                    "/accounts/send_login_email", {"email": EDITH}, follow=True
                )
                self.assertEqual(response.status_code, 200)
                self.assertEqual(shown_messages(response), [MAIL_FAILED_MESSAGE])
                self.assertContains(response, "We couldn&#39;t send your login email")
                self.assertNotContains(response, "Check your email")

    def test_error_is_logged_with_its_traceback(self):
        for error in MAIL_FAILURES:
            with (
                self.subTest(error=repr(error)),
                mock.patch(SEND_MESSAGES, side_effect=error),
                self.assertLogs("accounts.views", "ERROR") as logs,
            ):
                self.ask_for_login_email(EDITH)
            (record,) = logs.records
            self.assertIn(f"Could not send the login email to {EDITH}", record.getMessage())
            self.assertIs(record.exc_info[0], type(error))

    def test_no_usable_token_is_left_behind(self):
        for error in MAIL_FAILURES:
            with (
                self.subTest(error=repr(error)),
                mock.patch(SEND_MESSAGES, side_effect=error) as send,
                self.assertLogs("accounts.views", "ERROR"),
            ):
                self.messages_for(self.ask_for_login_email(EDITH))
            (sent,) = send.call_args.args[0]
            _, raw_token = self.login_link_in(sent)
            self.assertFalse(LoginToken.objects.exists())
            response = self.client.get("/accounts/login", {"token": raw_token})
            self.assertEqual(self.messages_for(response), [INVALID_LINK_MESSAGE])


class LoginViewTest(SuperlistsTestCase):
    def login_with_new_token(self, email=EDITH, client=None):
        _, raw_token = LoginToken.objects.issue(email)
        return (client or self.client).get("/accounts/login", {"token": raw_token})

    def test_good_token_logs_in_and_redirects_home(self):
        response = self.login_with_new_token()
        self.assertRedirects(response, "/")
        self.assertEqual(response.wsgi_request.user.email, EDITH)
        self.assertEqual(self.messages_for(response), [])

    def test_next_page_says_logged_in_as(self):
        self.login_with_new_token()
        self.assertContains(self.client.get("/"), f"Logged in as {EDITH}")

    def test_login_goes_through_django_auth_login(self):
        user = User.objects.create(email=EDITH)
        self.login_with_new_token()
        self.assertEqual(self.client.session[SESSION_KEY], str(user.pk))
        self.assertEqual(
            self.client.session[BACKEND_SESSION_KEY],
            "accounts.authentication.PasswordlessAuthenticationBackend",
        )
        user.refresh_from_db()
        self.assertIsNotNone(user.last_login)

    def test_first_login_creates_the_user(self):
        self.login_with_new_token()
        self.assertEqual(list(User.objects.values_list("email", flat=True)), [EDITH])

    def test_link_asked_with_any_capitalisation_logs_in_the_same_user(self):
        existing = User.objects.create(email=EDITH)
        self.ask_for_login_email("Edith@Example.com")
        url, _ = self.login_link_in(mail.outbox[0])
        response = self.client.get(url)
        self.assertEqual(response.wsgi_request.user, existing)

    def test_the_link_from_the_email_logs_in(self):
        self.ask_for_login_email(EDITH)
        url, _ = self.login_link_in(mail.outbox[0])
        self.client.get(url)
        self.assertContains(self.client.get("/"), f"Logged in as {EDITH}")

    def test_link_opened_in_a_different_browser_logs_that_browser_in(self):
        self.ask_for_login_email(EDITH)
        url, _ = self.login_link_in(mail.outbox[0])
        other_browser = Client()
        response = other_browser.get(url)
        self.assertEqual(response.wsgi_request.user.email, EDITH)
        self.assertNotContains(self.client.get("/"), "Logged in as")

    def test_the_link_lands_on_the_page_it_was_asked_from(self):
        self.ask_for_login_email(EDITH, next="/lists/abc123/")
        url, _ = self.login_link_in(mail.outbox[0])
        response = self.client.get(url)
        self.assertRedirects(response, "/lists/abc123/", fetch_redirect_response=False)
        self.assertEqual(response.wsgi_request.user.email, EDITH)

    def test_the_link_never_lands_on_another_site(self):
        for unsafe in ["https://evil.example/", "//evil.example/", "/\\evil.example", "x"]:
            with self.subTest(next=unsafe):
                _, raw_token = LoginToken.objects.issue(EDITH)
                response = self.client.get("/accounts/login", {"token": raw_token, "next": unsafe})
                self.assertRedirects(response, "/", fetch_redirect_response=False)
                self.assertEqual(response.wsgi_request.user.email, EDITH)

    def test_someone_elses_link_asks_before_switching_and_leaves_the_token_usable(self):
        self.client.force_login(User.objects.create(email=ONI))
        _, raw_token = LoginToken.objects.issue(EDITH)
        response = self.client.get("/accounts/login", {"token": raw_token, "next": "/lists/a/"})
        self.assertContains(response, f"You're logged in as {ONI}")
        self.assertContains(response, f"Log in as {EDITH}")
        self.assertEqual(self.client.get("/").wsgi_request.user.email, ONI)
        self.assertEqual(LoginToken.objects.email_if_usable(raw_token), EDITH)
        self.assertEqual(response["Referrer-Policy"], "no-referrer")

    def test_confirming_the_switch_logs_in_with_the_link(self):
        self.client.force_login(User.objects.create(email=ONI))
        _, raw_token = LoginToken.objects.issue(EDITH)
        page = self.client.get("/accounts/login", {"token": raw_token, "next": "/lists/a/"})
        self.assertContains(page, 'action="/accounts/login/confirm"')
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.content.decode()))
        response = Client(enforce_csrf_checks=True).post("/accounts/login/confirm", fields)
        self.assertEqual(response.status_code, 403)  # the page's CSRF field is needed
        response = self.client.post("/accounts/login/confirm", fields)
        self.assertRedirects(response, "/lists/a/", fetch_redirect_response=False)
        self.assertEqual(response.wsgi_request.user.email, EDITH)
        self.assertIsNone(LoginToken.objects.email_if_usable(raw_token))

    def test_staying_logged_in_keeps_the_account_and_the_link_works_elsewhere(self):
        self.client.force_login(User.objects.create(email=ONI))
        _, raw_token = LoginToken.objects.issue(EDITH)
        page = self.client.get("/accounts/login", {"token": raw_token, "next": "/lists/a/"})
        self.assertContains(page, 'href="/lists/a/" id="id_stay_logged_in"')
        self.assertEqual(self.client.get("/lists/a/").wsgi_request.user.email, ONI)
        elsewhere = Client().get("/accounts/login", {"token": raw_token})
        self.assertEqual(elsewhere.wsgi_request.user.email, EDITH)

    def test_your_own_link_while_logged_in_just_logs_in(self):
        self.client.force_login(User.objects.create(email=EDITH))
        response = self.login_with_new_token(EDITH)
        self.assertRedirects(response, "/", fetch_redirect_response=False)

    def test_a_used_link_while_logged_in_is_an_invalid_link_and_changes_nothing(self):
        self.client.force_login(User.objects.create(email=ONI))
        _, raw_token = LoginToken.objects.issue(EDITH)
        Client().get("/accounts/login", {"token": raw_token})
        response = self.client.get("/accounts/login", {"token": raw_token})
        self.assertEqual(self.messages_for(response), [INVALID_LINK_MESSAGE])
        self.assertEqual(self.client.get("/").wsgi_request.user.email, ONI)

    def assert_invalid_link(self, response):
        self.assertEqual(response["Location"], "/")
        self.assertFalse(response.wsgi_request.user.is_authenticated)
        self.assertEqual(self.messages_for(response), [INVALID_LINK_MESSAGE])

    def test_used_token_is_an_invalid_link(self):
        _, raw_token = LoginToken.objects.issue(EDITH)
        Client().get("/accounts/login", {"token": raw_token})
        self.assert_invalid_link(self.client.get("/accounts/login", {"token": raw_token}))

    @override_settings(LOGIN_TOKEN_MAX_AGE=60)
    def test_expired_token_does_not_log_in(self):
        _, raw_token = LoginToken.objects.issue(EDITH)
        with self.clock_moved(seconds=61):
            response = self.client.get("/accounts/login", {"token": raw_token})
        self.assert_invalid_link(response)

    def test_bogus_tokens_do_not_log_in(self):
        for bogus in ["nonsense", "x" * 10000, "%00", "\u00e9\u00e8"]:
            with self.subTest(token=bogus[:20]):
                self.assert_invalid_link(self.client.get("/accounts/login", {"token": bogus}))

    def test_stored_hash_used_as_a_token_does_not_log_in(self):
        row, _ = LoginToken.objects.issue(EDITH)
        self.assert_invalid_link(self.client.get("/accounts/login", {"token": row.token_hash}))

    def test_missing_token_does_not_log_in(self):
        self.assert_invalid_link(self.client.get("/accounts/login"))
        self.assert_invalid_link(self.client.get("/accounts/login?token="))

    def test_invalid_link_message_shows_on_the_home_page(self):
        response = self.client.get("/accounts/login?token=nope", follow=True)
        self.assertContains(response, "Invalid login link, please request a new one")

    def test_login_response_is_never_cached(self):
        for response in [self.login_with_new_token(), self.client.get("/accounts/login")]:
            self.assertIn("no-store", response["Cache-Control"])

    def test_head_request_leaves_the_token_usable(self):
        _, raw_token = LoginToken.objects.issue(EDITH)
        response = self.client.head("/accounts/login", {"token": raw_token})
        self.assertEqual(response.status_code, 405)
        response = self.client.get("/accounts/login", {"token": raw_token})
        self.assertEqual(response.wsgi_request.user.email, EDITH)

    def test_post_gets_a_styled_405(self):
        response = self.client.post("/accounts/login", {"token": "x"})
        self.assertEqual(response.status_code, 405)
        self.assertEqual(response["Allow"], "GET")
        self.assertContains(response, 'id="id_error_page"', status_code=405)


class LogoutViewTest(SuperlistsTestCase):
    def setUp(self):
        self.client.force_login(User.objects.create(email=EDITH))

    def test_post_logs_out_and_redirects_home(self):
        response = self.client.post("/accounts/logout")
        self.assertRedirects(response, "/")
        self.assertNotIn(SESSION_KEY, self.client.session)
        self.assertNotContains(self.client.get("/"), "Logged in as")

    def test_get_does_not_log_out(self):
        response = self.client.get("/accounts/logout")
        self.assertEqual(response.status_code, 405)
        self.assertEqual(response["Allow"], "POST")
        self.assertContains(response, "id_error_page", status_code=405)
        self.assertContains(self.client.get("/"), f"Logged in as {EDITH}")

    def test_logout_needs_the_csrf_token(self):
        csrf_client = Client(enforce_csrf_checks=True)
        csrf_client.force_login(User.objects.get(email=EDITH))
        response = csrf_client.post("/accounts/logout")
        self.assertEqual(response.status_code, 403)
        self.assertContains(csrf_client.get("/"), f"Logged in as {EDITH}")


class NavbarTest(SuperlistsTestCase):
    def test_logged_in_visitor_sees_email_my_lists_and_a_log_out_form(self):
        self.client.force_login(User.objects.create(email=EDITH))
        response = self.client.get("/")
        self.assertContains(response, f"Logged in as {EDITH}")
        self.assertContains(response, f'href="/lists/users/{EDITH}/"')
        self.assertContains(response, 'method="POST" action="/accounts/logout"')
        self.assertNotContains(response, 'name="email"')

    def test_anonymous_visitor_sees_the_login_form(self):
        response = self.client.get("/")
        self.assertContains(response, 'action="/accounts/send_login_email"')
        self.assertContains(response, 'name="email"')
        self.assertContains(response, 'name="next" value="/"')
        self.assertNotContains(response, "Logged in as")
