"""The browser refuses an empty item; the site refuses blank and duplicate ones, and its
message hides as Edith types."""

from selenium.webdriver.common.by import By

from functional_tests.base import FunctionalTest
from functional_tests.pages import DUPLICATE_ITEM_ERROR, EMPTY_ITEM_ERROR, ListPage
from functional_tests.waits import wait_for


class ItemValidationTest(FunctionalTest):
    def wait_for_element(self, css):
        return wait_for(lambda: self.browser.find_element(By.CSS_SELECTOR, css), repr(css))

    def get_error_element(self):
        return self.browser.find_element(By.CSS_SELECTOR, ".invalid-feedback")

    def test_cannot_add_empty_list_items(self):
        # Edith goes to the home page and accidentally tries to submit an empty list item.
        # She hits Enter on the empty input box.
        page = ListPage(self).go()
        home_url = page.url()
        page.remember_this_document()
        page.submit_item("")

        # The browser intercepts the request, and does not load the list page.
        self.wait_for_element("#id_text:invalid")

        # She starts typing some text for the new item and the box is happy again.
        page.item_box().send_keys("Purchase milk")
        self.wait_for_element("#id_text:valid")
        # Nothing was sent: she is still on the very page she typed into.
        self.assertTrue(page.is_same_document(), "the empty item was sent: the page was replaced")
        self.assertEqual(page.url(), home_url)

        # And she can submit it successfully.
        page.submit_item("")
        page.wait_for_row_in_list_table("1: Purchase milk")

        # Perversely, she now decides to submit a second blank list item.
        page.remember_this_document()
        page.submit_item("")

        # Again, the browser will not comply.
        page.wait_for_row_in_list_table("1: Purchase milk")
        self.wait_for_element("#id_text:invalid")

        # And she can make it happy by filling some text in.
        page.item_box().send_keys("Make tea")
        self.wait_for_element("#id_text:valid")
        self.assertTrue(page.is_same_document(), "the empty item was sent: the page was replaced")
        page.submit_item("")
        page.wait_for_rows(["1: Purchase milk", "2: Make tea"])

        # Spaces alone get past the browser, but not past the site: it tells her list items
        # cannot be blank, and marks the box.
        page.submit_item("   ")
        page.wait_for_error(EMPTY_ITEM_ERROR)
        self.assertTrue(page.item_box_is_invalid())
        self.assertEqual(page.rows(), ["1: Purchase milk", "2: Make tea"])

    def test_cannot_add_duplicate_items(self):
        # Edith starts a new list.
        page = ListPage(self).start_list("Buy wellies")

        # She accidentally tries to enter a duplicate item.
        page.submit_item("Buy wellies")

        # She sees a helpful error message, and her list is unchanged.
        wait_for(
            lambda: self.assertEqual(self.get_error_element().text, DUPLICATE_ITEM_ERROR),
            f"the error {DUPLICATE_ITEM_ERROR!r}",
        )
        self.assertEqual(page.rows(), ["1: Buy wellies"])

    def test_error_messages_are_cleared_on_input(self):
        # Edith starts a list and causes a validation error.
        page = ListPage(self).start_list("Banter too thick")
        page.submit_item("Banter too thick")
        wait_for(
            lambda: self.assertTrue(self.get_error_element().is_displayed()),
            "the duplicate item error to show",
        )

        # She starts typing in the input box to clear the error.
        page.item_box().send_keys("a")

        # She is pleased to see that the error message disappears (it stays in the page,
        # hidden, rather than being removed).
        wait_for(
            lambda: self.assertFalse(self.get_error_element().is_displayed()),
            "the error to be hidden, still in the page",
        )
        self.assertFalse(page.item_box_is_invalid())
