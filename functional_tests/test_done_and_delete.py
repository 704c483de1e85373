"""Edith crosses items off her list, changes her mind, and deletes one."""

from selenium.webdriver.common.keys import Keys

from functional_tests.base import FunctionalTest
from functional_tests.pages import ListPage


class DoneAndDeleteTest(FunctionalTest):
    def test_can_mark_items_done_and_undone_and_delete_them(self):
        # Edith starts a list with three things to do.
        page = ListPage(self).start_list("Buy flour")
        page.add_item("Bake bread")
        page.add_item("Eat bread")

        # Each row reads just its number and its text: the done and delete buttons are
        # icons, with names for screen readers but no words on the screen.
        self.assertEqual(page.rows(), ["1: Buy flour", "2: Bake bread", "3: Eat bread"])

        # She buys the flour and marks it done: it is struck through.
        page.mark_done("Buy flour")
        page.wait_for_struck_through("Buy flour")
        self.assertTrue(page.is_marked_done("Buy flour"))
        self.assertFalse(page.is_struck_through("Bake bread"))

        # When she comes back later, it is still done.
        page.reload()
        page.wait_for_struck_through("Buy flour")
        self.assertTrue(page.is_marked_done("Buy flour"))

        # She realises she bought self-raising flour by mistake, and marks it not done again.
        page.mark_done("Buy flour")
        page.wait_for_struck_through("Buy flour", struck=False)
        self.assertFalse(page.is_marked_done("Buy flour"))

        # Decided to buy bread instead, she deletes "Bake bread"; the list closes the gap.
        page.delete("Bake bread")
        page.wait_for_rows(["1: Buy flour", "2: Eat bread"])

        # It stays deleted, and the flour stays not done.
        page.reload()
        page.wait_for_rows(["1: Buy flour", "2: Eat bread"])
        self.assertFalse(page.is_struck_through("Buy flour"))

    def test_done_and_delete_work_from_the_keyboard(self):
        # Edith's friend Francis uses the keyboard and a screen reader. He starts a list.
        page = ListPage(self).start_list("Buy stamps")
        page.add_item("Post letters")

        # From the item box, Tab takes him to the first item's Done button, which his
        # screen reader announces with the item's name.
        page.item_box().send_keys(Keys.TAB)
        focused = self.browser.switch_to.active_element
        self.assertEqual(focused.accessible_name, "Done: Buy stamps")

        # He presses Space: the item is done.
        focused.send_keys(Keys.SPACE)
        page.wait_for_struck_through("Buy stamps")

        # Tab again reaches its Delete button; Enter deletes the item.
        self.browser.switch_to.active_element.send_keys(Keys.TAB)
        focused = self.browser.switch_to.active_element
        self.assertEqual(focused.accessible_name, "Delete: Buy stamps")
        focused.send_keys(Keys.ENTER)
        page.wait_for_rows(["1: Post letters"])

        # His keyboard focus is not lost with the row: it is on the next item's Delete button.
        self.assertEqual(
            self.browser.switch_to.active_element.accessible_name, "Delete: Post letters"
        )
