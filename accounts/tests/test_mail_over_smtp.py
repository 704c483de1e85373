"""Login emails sent over the wire to real SMTP servers started on the loopback interface."""

import email
import logging
import smtplib
import socket
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from django.core import mail
from django.test import override_settings

from accounts.models import LoginToken
from accounts.views import CHECK_EMAIL_MESSAGE, MAIL_FAILED_MESSAGE
from rigs.processes import free_port
from superlists.logs import RequestContextFilter
from superlists.tests.base import EDITH, LOGIN_LINK, SuperlistsTestCase, shown_messages

# Only ever the loopback address: these tests must not reach any other machine.
LOOPBACK = "127.0.0.1"
REQUEST_ID = "smtp-test-request-1"


class RecordingHandler:
    """An aiosmtpd handler that keeps what it is sent."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def refuse_every_login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=False, handled=False)


class RequestContextRecorder(logging.Handler):
    """Keeps records after the site's RequestContextFilter has stamped them."""

    def __init__(self):
        super().__init__()
        self.addFilter(RequestContextFilter())
        self.records = []

    def emit(self, record):
        self.records.append(record)


class MailOverSmtpTest(SuperlistsTestCase):
    def use_smtp_server_at(self, port, **settings):
        self.enterContext(
            override_settings(
                **{
                    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                    "EMAIL_HOST": LOOPBACK,
                    "EMAIL_PORT": port,
                    "EMAIL_HOST_USER": "",
                    "EMAIL_HOST_PASSWORD": "",
                    "EMAIL_USE_TLS": False,
                    "EMAIL_USE_SSL": False,
                    "EMAIL_TIMEOUT": 5,
                    **settings,
                }
            )
        )

    def start_smtp_server(self, smtp_options=None, **settings):
        """Run a real SMTP server on loopback for this test, and point the site at it."""
        handler = RecordingHandler()
        # Plain-text AUTH is what these tests want to provoke, on loopback only.
        self.enterContext(warnings.catch_warnings())
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS", UserWarning)
        controller = Controller(
            handler, hostname=LOOPBACK, port=free_port(), **(smtp_options or {})
        )
        controller.start()
        self.addCleanup(controller.stop)
        self.use_smtp_server_at(controller.port, **settings)
        return handler

    def ask_and_expect_failure(self):
        """Ask for a link while mail fails; return the page shown and the error record."""
        with self.assertLogs("accounts.views", "ERROR") as logs:
            response = self.client.post(
                "/accounts/send_login_email", {"email": EDITH}, HTTP_X_REQUEST_ID=REQUEST_ID
            )
        self.assertEqual(response.status_code, 302)
        page = self.client.get(response["Location"])
        (record,) = logs.records
        return page, record

    def assert_friendly_failure(self, page, record, error_class):
        self.assertEqual(page.status_code, 200)
        self.assertEqual(shown_messages(page), [MAIL_FAILED_MESSAGE])
        self.assertContains(page, "We couldn&#39;t send your login email")
        self.assertIn(f"Could not send the login email to {EDITH}", record.getMessage())
        self.assertIsInstance(record.exc_info[1], error_class)
        self.assertIsNotNone(record.exc_info[2], "the log line should carry the traceback")
        self.assertFalse(LoginToken.objects.exists(), "no usable token should be left")

    def test_login_email_arrives_over_smtp_and_its_link_logs_in(self):
        server = self.start_smtp_server()
        response = self.ask_for_login_email(EDITH)
        self.assertEqual(self.messages_for(response), [CHECK_EMAIL_MESSAGE])

        (envelope,) = server.envelopes
        self.assertEqual(envelope.rcpt_tos, [EDITH])
        received = email.message_from_bytes(envelope.content)
        self.assertEqual(received["Subject"], "Your login link for Superlists")
        body = received.get_payload(decode=True).decode()
        self.assertIn("Use this link to log in:", body)
        link = LOGIN_LINK.search(body)
        # Over the wire too, the link is the body's last line, where the book's FT looks.
        self.assertEqual(body.splitlines()[-1], link["url"])
        self.client.get("/accounts/login", {"token": link["token"]})
        self.assertContains(self.client.get("/"), f"Logged in as {EDITH}")
        self.assertEqual(mail.outbox, [])

    def test_server_demanding_authentication_it_does_not_get(self):
        # The classic new server: EMAIL_HOST_USER set, EMAIL_PASSWORD forgotten, so Django
        # never logs in and the server refuses the sender.
        server = self.start_smtp_server(
            {
                "auth_required": True,
                "auth_require_tls": False,
                "authenticator": refuse_every_login,
            },
            EMAIL_HOST_USER="superlists@example.com",
        )
        page, record = self.ask_and_expect_failure()
        self.assert_friendly_failure(page, record, smtplib.SMTPSenderRefused)
        self.assertEqual(server.envelopes, [])

    def test_server_refusing_the_credentials_it_is_given(self):
        server = self.start_smtp_server(
            {
                "auth_required": True,
                "auth_require_tls": False,
                "authenticator": refuse_every_login,
            },
            EMAIL_HOST_USER="superlists@example.com",
            EMAIL_HOST_PASSWORD="wrong password",
        )
        page, record = self.ask_and_expect_failure()
        self.assert_friendly_failure(page, record, smtplib.SMTPAuthenticationError)
        self.assertEqual(server.envelopes, [])

    def test_refused_mail_is_logged_with_the_request_id(self):
        self.start_smtp_server(
            {
                "auth_required": True,
                "auth_require_tls": False,
                "authenticator": refuse_every_login,
            },
        )
        recorder = RequestContextRecorder()
        with self.assertLogs("accounts.views", "ERROR"):
            # Inside assertLogs, which swaps the logger's handlers and restores them after.
            logging.getLogger("accounts.views").addHandler(recorder)
            self.client.post(
                "/accounts/send_login_email", {"email": EDITH}, HTTP_X_REQUEST_ID=REQUEST_ID
            )
        (record,) = recorder.records
        self.assertEqual(record.request_id, REQUEST_ID)
        self.assertEqual(record.path, "/accounts/send_login_email")

    def test_mail_server_not_listening(self):
        self.use_smtp_server_at(free_port())
        page, record = self.ask_and_expect_failure()
        self.assert_friendly_failure(page, record, ConnectionRefusedError)

    def test_mail_server_that_never_answers(self):
        # It accepts the connection (the kernel does that) but never sends its greeting.
        silent = socket.socket()
        self.addCleanup(silent.close)
        silent.bind((LOOPBACK, 0))
        silent.listen()
        self.use_smtp_server_at(silent.getsockname()[1], EMAIL_TIMEOUT=0.5)
        page, record = self.ask_and_expect_failure()
        self.assert_friendly_failure(page, record, OSError)
