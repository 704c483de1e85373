"""Empty and duplicate items are refused with a message that goes away as Edith types."""

from functional_tests.base import FunctionalTest
from functional_tests.pages import DUPLICATE_ITEM_ERROR, EMPTY_ITEM_ERROR, ListPage


class ItemValidationTest(FunctionalTest):
    def test_cannot_add_empty_list_items(self):
        # Edith goes to the home page and accidentally submits an empty item.
        page = ListPage(self).go()
        page.submit_item("")

        # The browser does not stop her (the form is novalidate, so the site itself must
        # cope): the home page tells her list items cannot be blank, and marks the box.
        page.wait_for_error(EMPTY_ITEM_ERROR)
        self.assertTrue(page.item_box_is_invalid())

        # She starts typing and the error disappears.
        page.item_box().send_keys("Buy milk")
        page.wait_for_no_error()
        self.assertFalse(page.item_box_is_invalid())

        # She submits, and this time it works.
        page.submit_item("")
        page.wait_for_row_in_list_table("1: Buy milk")

        # Perversely, she now decides to submit a second blank list item.
        page.submit_item("")

        # She receives a similar warning on the list page.
        page.wait_for_error(EMPTY_ITEM_ERROR)

        # And she can correct it by filling some text in.
        page.add_item("Make tea")
        page.wait_for_rows(["1: Buy milk", "2: Make tea"])

    def test_cannot_add_duplicate_items(self):
        # Edith starts a new list.
        page = ListPage(self).start_list("Buy wellies")

        # She accidentally tries to enter a duplicate item.
        page.submit_item("Buy wellies")

        # She sees a helpful error message, and her list is unchanged.
        page.wait_for_error(DUPLICATE_ITEM_ERROR)
        self.assertEqual(page.rows(), ["1: Buy wellies"])

        # The error goes away as soon as she types something else.
        page.item_box().send_keys("!")
        page.wait_for_no_error()
