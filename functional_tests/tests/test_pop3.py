import socketserver
import threading
from email.message import EmailMessage

from django.test import SimpleTestCase

from functional_tests.server import StagingError, StagingServer, _Pop3Mailbox

SUBJECT = "Your login link for Superlists"


def message(to, subject=SUBJECT, body="Use this link to log in:\nhttp://x/accounts/login?token=t"):
    mail = EmailMessage()
    mail["From"] = "noreply@staging.test"
    mail["To"] = to
    mail["Subject"] = subject
    mail.set_content(body)
    return mail.as_bytes().replace(b"\n", b"\r\n")


class FakePop3(socketserver.ThreadingTCPServer):
    """A POP3 server on loopback with one mailbox: enough of RFC 1939 for poplib."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, user="catchall", password="secret"):
        super().__init__(("127.0.0.1", 0), _Session)
        self.user, self.password = user, password
        self.messages = []
        self.logins = 0
        self.before_login = None  # called with the login count: mail "arriving" between polls
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.01}).start()

    def stop(self):
        self.shutdown()
        self.server_close()


class _Session(socketserver.StreamRequestHandler):
    def handle(self):
        server, deleted, user = self.server, set(), None
        self.send(b"+OK fake POP3 ready")
        while line := self.rfile.readline():
            command, _, argument = line.decode().strip().partition(" ")
            command = command.upper()
            if command == "USER":
                user = argument
                self.send(b"+OK")
            elif command == "PASS":
                if (user, argument) != (server.user, server.password):
                    self.send(b"-ERR [AUTH] Authentication failed.")
                    continue
                with server.lock:
                    server.logins += 1
                    if server.before_login:
                        server.before_login(server.logins)
                    # POP3 freezes the mailbox at login.
                    box = list(server.messages)
                self.send(b"+OK Logged in.")
            elif command == "STAT":
                self.send(f"+OK {len(box)} {sum(map(len, box))}".encode())
            elif command in {"TOP", "RETR"}:
                data = box[int(argument.split()[0]) - 1]
                if command == "TOP":
                    data = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
                self.send(b"+OK", *data.rstrip(b"\r\n").split(b"\r\n"), b".")
            elif command == "DELE":
                deleted.add(int(argument))
                self.send(b"+OK")
            elif command == "QUIT":
                with server.lock:
                    # DELE takes effect only at a clean QUIT.
                    gone = {id(box[number - 1]) for number in deleted}
                    server.messages = [m for m in server.messages if id(m) not in gone]
                self.send(b"+OK Bye")
                return
            else:
                self.send(b"-ERR unknown command")

    def send(self, *lines):
        self.wfile.write(b"".join(line + b"\r\n" for line in lines))


class Pop3MailboxTest(SimpleTestCase):
    def setUp(self):
        self.pop3 = FakePop3()
        self.addCleanup(self.pop3.stop)
        host, port = self.pop3.server_address
        self.environ = {
            "POP3_HOST": host,
            "POP3_PORT": str(port),
            "POP3_USER": "catchall",
            "POP3_PASSWORD": "secret",
        }
        self.mailbox = _Pop3Mailbox.from_environment(self.environ, default_host="unused")

    def test_take_returns_the_message_to_that_address_and_deletes_it(self):
        self.pop3.messages = [message("oni@staging.test"), message("edith@staging.test")]
        email = self.mailbox.take("edith@staging.test", SUBJECT)
        self.assertEqual(email.to, ("edith@staging.test",))
        self.assertIn("Use this link to log in:", email.body)
        self.assertEqual(len(self.pop3.messages), 1)
        self.assertIn(b"oni@staging.test", self.pop3.messages[0])

    def test_another_subject_or_address_is_not_taken(self):
        self.pop3.messages = [message("edith@staging.test", subject="Hello")]
        with self.assertRaisesMessage(LookupError, "1 other message(s) in the mailbox"):
            self.mailbox.take("edith@staging.test", SUBJECT)
        with self.assertRaises(LookupError):
            self.mailbox.take("edit@staging.test", "Hello")
        self.assertEqual(len(self.pop3.messages), 1)

    def test_a_wrong_password_names_the_mailbox(self):
        mailbox = _Pop3Mailbox.from_environment(
            {**self.environ, "POP3_PASSWORD": "wrong"}, default_host="unused"
        )
        with self.assertRaisesMessage(
            StagingError, "Could not log in to pop3://catchall@127.0.0.1"
        ):
            mailbox.take("edith@staging.test", SUBJECT)

    def test_no_account_configured_says_which_variables_to_set(self):
        mailbox = _Pop3Mailbox.from_environment({}, default_host="127.0.0.1")
        with self.assertRaisesMessage(StagingError, "Set POP3_USER and POP3_PASSWORD"):
            mailbox.take("edith@staging.test", SUBJECT)

    def test_wait_for_email_logs_in_again_until_the_message_arrives(self):
        def deliver_on_third_login(logins):
            if logins == 3:
                self.pop3.messages.append(message("edith@staging.test"))

        self.pop3.before_login = deliver_on_third_login
        server = StagingServer("127.0.0.1", self.environ)
        email = server.wait_for_email("edith@staging.test", SUBJECT, timeout=5)
        self.assertEqual(email.subject, SUBJECT)
        self.assertEqual(self.pop3.logins, 3)

    def test_wait_for_email_fails_at_its_deadline_saying_where_it_looked(self):
        server = StagingServer("127.0.0.1", self.environ)
        with self.assertRaises(AssertionError) as failure:
            server.wait_for_email("edith@staging.test", SUBJECT, timeout=0.3)
        self.assertIn("Waited 0.3 s for the email to edith@staging.test", str(failure.exception))
        self.assertIn("pop3://catchall@127.0.0.1", str(failure.exception))
        self.assertIn("0 other message(s)", str(failure.exception))
