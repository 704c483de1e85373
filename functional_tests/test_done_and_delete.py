"""Edith crosses items off her list, changes her mind, and deletes one."""

from functional_tests.base import FunctionalTest
from functional_tests.pages import ListPage


class DoneAndDeleteTest(FunctionalTest):
    def test_can_mark_items_done_and_undone_and_delete_them(self):
        # Edith starts a list with three things to do.
        page = ListPage(self).start_list("Buy flour")
        page.add_item("Bake bread")
        page.add_item("Eat bread")

        # She buys the flour and marks it done: it is struck through.
        page.mark_done("Buy flour")
        page.wait_for_struck_through("Buy flour")
        self.assertFalse(page.is_struck_through("Bake bread"))

        # When she comes back later, it is still done.
        page.reload()
        page.wait_for_struck_through("Buy flour")

        # She realises she bought self-raising flour by mistake, and marks it not done again.
        page.mark_done("Buy flour")
        page.wait_for_struck_through("Buy flour", struck=False)

        # Decided to buy bread instead, she deletes "Bake bread"; the list closes the gap.
        page.delete("Bake bread")
        page.wait_for_rows(["1: Buy flour", "2: Eat bread"])

        # It stays deleted, and the flour stays not done.
        page.reload()
        page.wait_for_rows(["1: Buy flour", "2: Eat bread"])
        self.assertFalse(page.is_struck_through("Buy flour"))
