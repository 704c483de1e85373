"""Edith logs in with the link the site emails her, and logs out again."""

import re

from functional_tests.base import FunctionalTest
from functional_tests.pages import (
    INVALID_LOGIN_LINK,
    LOGIN_EMAIL_INTRO,
    LOGIN_EMAIL_SUBJECT,
    ListPage,
)


class LoginTest(FunctionalTest):
    def test_login_with_emailed_link_then_logout(self):
        # Edith goes to the awesome superlists site and notices a "Log in" box in the navbar
        # for the first time. It's telling her to enter her email address, so she does.
        page = ListPage(self).go()
        page.request_login_link(self.edith)

        # She checks her email and finds a message.
        message = self.server.wait_for_email(self.edith, LOGIN_EMAIL_SUBJECT)

        # It has a link to this very site in it, at the very end.
        self.assertIn(LOGIN_EMAIL_INTRO, message.body)
        url_search = re.search(r"https?://.+/.+$", message.body)
        if not url_search:
            self.fail(f"Could not find url in email body:\n{message.body}")
        url = url_search.group(0)
        self.assertTrue(url.startswith(self.server.url + "/accounts/login?token="), url)

        # She clicks it, and is logged in.
        self.browser.get(url)
        page.wait_to_be_logged_in(self.edith)

        # Now she logs out.
        page.log_out()
        page.wait_to_be_logged_out(self.edith)

        # Curious, she clicks the old link again: it has been used, so it does not work.
        self.browser.get(url)
        page.wait_for_text(INVALID_LOGIN_LINK)
        page.wait_to_be_logged_out(self.edith)
