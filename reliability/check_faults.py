"""Faults a real server meets: the mail server is down or refuses; the site must stay calm."""

import html
import unittest

from rigs.form_client import FormClient
from rigs.gunicorn import Gunicorn

FRIENDLY = "couldn't send your login email"


class MailServerDownTest(unittest.TestCase):
    def test_login_page_shows_friendly_message_and_the_error_is_logged(self):
        # Nothing listens on the EMAIL_PORT the harness picks: a mail server that is down.
        with Gunicorn(workers=2) as server:
            client = FormClient(server.url)
            status, headers, _ = client.post(
                "/accounts/send_login_email", {"email": "edith@example.com"}
            )
            page_status, _, page = client.get(headers.get("Location", "/"))
            error_log = server.error_log()
        print(f"\n  mail server down: POST answered {status}, then a {page_status} page")
        self.assertEqual(status, 302)
        self.assertEqual(page_status, 200)
        self.assertIn(FRIENDLY, html.unescape(page))
        self.assertIn("Could not send the login email", error_log)
        self.assertIn("ConnectionRefusedError", error_log)
        self.assertIn(f"req={headers['X-Request-ID']}", error_log)


if __name__ == "__main__":
    unittest.main()
