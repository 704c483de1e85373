"""Page objects: each page's selectors live here, and only here."""

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from functional_tests.waits import wait_for

CHECK_YOUR_EMAIL = "Check your email, we've sent you a link you can use to log in."
INVALID_LOGIN_LINK = "Invalid login link, please request a new one"
EMPTY_ITEM_ERROR = "You can't have an empty list item"
DUPLICATE_ITEM_ERROR = "You've already got this in your list"
LOGIN_EMAIL_SUBJECT = "Your login link for Superlists"
LOGIN_EMAIL_INTRO = "Use this link to log in:"


class Page:
    """A page in one visitor's browser, with the navbar every page shares."""

    path = "/"

    def __init__(self, test, browser=None):
        self.test = test
        self.browser = browser or test.browser

    def go(self):
        self.browser.get(self.test.server.url + self.path)
        return self

    def find(self, css):
        return self.browser.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        return self.browser.find_elements(By.CSS_SELECTOR, css)

    def text_of(self, css):
        return self.find(css).text

    def page_text(self):
        return self.find("body").text

    def heading(self):
        return self.text_of("h1")

    def wait_for_text(self, text):
        """Wait until text shows anywhere on the page."""
        return wait_for(lambda: self.test.assertIn(text, self.page_text()), f"{text!r} on the page")

    # The navbar.

    def request_login_link(self, email):
        box = self.find("#id_email_nav")
        box.send_keys(email, Keys.ENTER)
        return self.wait_for_text(CHECK_YOUR_EMAIL)

    def wait_to_be_logged_in(self, email):
        wait_for(
            lambda: self.test.assertEqual(
                self.text_of("#id_logged_in_as"), f"Logged in as {email}"
            ),
            f"to be logged in as {email}",
        )

    def wait_to_be_logged_out(self, email):
        wait_for(lambda: self.find("#id_email_nav"), "the login box")
        self.test.assertNotIn(email, self.find("nav").text)

    def log_out(self):
        self.find("#id_logout").click()
        return self

    def go_to_my_lists(self):
        self.find("nav").find_element(By.LINK_TEXT, "My lists").click()
        return MyListsPage(self.test, self.browser).wait_until_shown()

    def has_my_lists_link(self):
        return bool(self.find("nav").find_elements(By.LINK_TEXT, "My lists"))


class ListPage(Page):
    """The home page and a list's page: both have the item box; a list also has its table."""

    def item_box(self):
        return self.find("#id_text")

    def start_list(self, text):
        """From the home page, start a new list with text as its first item."""
        self.go()
        self.add_item(text, expect_row=1)
        return self

    def add_item(self, text, expect_row=None):
        """Type text into the item box and wait until it is the next row of the table."""
        row_number = expect_row or len(self.rows()) + 1
        self.item_box().send_keys(text, Keys.ENTER)
        self.wait_for_row_in_list_table(f"{row_number}: {text}")
        return self

    def submit_item(self, text):
        """Submit the item box as is, without waiting for any particular outcome."""
        self.item_box().send_keys(text, Keys.ENTER)
        return self

    def rows(self):
        """The table's rows as Selenium reads them (the book's row.text), like "1: Buy milk"."""
        # The home page has no table: no rows.
        return [row.text for row in self.find_all("#id_list_table tr")]

    def wait_for_row_in_list_table(self, row):
        wait_for(lambda: self.test.assertIn(row, self.rows()), f"the row {row!r} in the list")

    def wait_for_rows(self, rows):
        wait_for(lambda: self.test.assertEqual(self.rows(), rows), f"exactly the rows {rows}")

    def url(self):
        return self.browser.current_url

    def wait_for_list_url(self):
        """Wait until the browser is on a list's own page, and return its URL."""
        wait_for(lambda: self.test.assertRegex(self.url(), r"/lists/[^/]+/$"), "a list's own URL")
        return self.url()

    def reload(self):
        self.browser.refresh()
        wait_for(lambda: self.find("#id_list_table"), "the list table after reloading")
        return self

    def error(self):
        return self.text_of("#id_text_error")

    def wait_for_error(self, message):
        wait_for(
            lambda: self.test.assertEqual(self.error(), message), f"the item error {message!r}"
        )

    def item_box_is_invalid(self):
        return "is-invalid" in self.item_box().get_attribute("class")

    def remember_this_document(self):
        """Tag the document in the browser, so is_same_document() can tell if it was replaced."""
        self.browser.execute_script("window.ftRemembered = true;")

    def is_same_document(self):
        return self.browser.execute_script("return window.ftRemembered === true;")

    def _row(self, text):
        return self.find("#id_list_table").find_element(
            By.XPATH, f".//tr[td[contains(@class, 'item-text')][normalize-space()={_xpath(text)}]]"
        )

    def row_button(self, action, text):
        """The button a screen reader announces as "{action}: {text}" (its accessible name)."""
        name = f"{action}: {text}"
        for button in self._row(text).find_elements(By.TAG_NAME, "button"):
            if button.accessible_name == name:
                return button
        raise LookupError(f"no button named {name!r} in the row of {text!r}")

    def mark_done(self, text):
        """Press the row's Done button, which toggles: done, or not done again."""
        self.row_button("Done", text).click()
        return self

    def delete(self, text):
        self.row_button("Delete", text).click()
        return self

    def is_marked_done(self, text):
        """Whether a screen reader hears the row's Done button as pressed."""
        return self.row_button("Done", text).get_attribute("aria-pressed") == "true"

    def is_struck_through(self, text):
        """Whether the visitor sees the item crossed out (the stylesheet really applied)."""
        cell = self._row(text).find_element(By.CSS_SELECTOR, ".item-text")
        return "line-through" in cell.value_of_css_property("text-decoration-line")

    def wait_for_struck_through(self, text, struck=True):
        wait_for(
            lambda: self.test.assertEqual(self.is_struck_through(text), struck),
            f"{text!r} to {'be' if struck else 'no longer be'} struck through",
        )

    def owner(self):
        return self.text_of("#id_list_owner")

    def sharees(self):
        return [li.text for li in self.find_all("#id_sharees li.list-sharee")]

    def can_share(self):
        return bool(self.find_all("#id_share_form"))

    def share_with(self, email):
        box = self.find("#id_sharee")
        self.test.assertEqual(box.get_attribute("placeholder"), "your-friend@example.com")
        box.send_keys(email, Keys.ENTER)
        wait_for(lambda: self.test.assertIn(email, self.sharees()), f"{email} among the sharees")
        return self


class MyListsPage(Page):
    """A visitor's own lists, and the lists shared with them."""

    def wait_until_shown(self):
        wait_for(lambda: self.test.assertEqual(self.heading(), "My Lists"), "the My Lists page")
        return self

    def owned_lists(self):
        return [link.text for link in self.find_all("#id_owned_lists a[href*='/lists/']")]

    def shared_lists(self):
        return [li.text for li in self.find_all("#id_shared_lists li")]

    def open_list(self, name):
        self.find("main").find_element(By.LINK_TEXT, name).click()
        page = ListPage(self.test, self.browser)
        page.wait_for_row_in_list_table(f"1: {name}")
        return page


class ErrorPage(Page):
    """The site's own styled error page; its default path is one that never exists."""

    path = "/no-such-page/"

    def wait_until_shown(self):
        wait_for(lambda: self.find("#id_error_page"), "the styled error page")
        return self


def _xpath(text):
    """text as an XPath string literal, whatever quotes it holds."""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    parts = "', \"'\", '".join(text.split("'"))
    return f"concat('{parts}')"
