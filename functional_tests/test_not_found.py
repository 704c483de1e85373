"""A wrong list address gets the site's own friendly 404, not a bare error."""

from functional_tests.base import FunctionalTest
from functional_tests.pages import ErrorPage


class NotFoundTest(FunctionalTest):
    def test_junk_list_id_gets_a_styled_404(self):
        # Edith mistypes the address of her list.
        page = ErrorPage(self)
        page.path = "/lists/not-a-real-list-id/"
        page.go().wait_until_shown()

        # She gets a page that looks like the rest of the site, saying there is nothing here.
        self.assertIn("404", page.heading())
        self.assertIn("Page not found", self.browser.title)
        self.assertEqual(page.find("nav").value_of_css_property("display"), "flex")

        # It offers her a way back home, which works.
        page.find("#id_error_page a").click()
        page.wait_for_text("Start a new To-Do list")
