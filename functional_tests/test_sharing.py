"""Edith shares a list with Oni, who sees it in a browser of his own."""

from functional_tests.base import FunctionalTest
from functional_tests.pages import ErrorPage, ListPage


class SharingTest(FunctionalTest):
    def test_owner_can_share_a_list_with_another_user(self):
        # Edith is a logged-in user, and so is her friend Oni, on his own computer.
        self.log_in_as(self.edith)
        oni_browser = self.open_second_browser("oni")
        self.log_in_as(self.oni, browser=oni_browser)

        # Edith starts a list of her own.
        edith_page = ListPage(self).start_list("Get help")
        list_url = edith_page.wait_for_list_url()
        self.assertEqual(edith_page.owner(), self.edith)

        # Oni tries her list's address before she has shared it: nobody is there for him.
        oni_browser.get(list_url)
        ErrorPage(self, oni_browser).wait_until_shown()

        # Edith notices a "Share this list" option and shares it with Oni.
        self.assertTrue(edith_page.can_share())
        edith_page.share_with(self.oni)
        self.assertEqual(edith_page.sharees(), [self.oni])

        # Oni goes to the lists page in his browser and sees Edith's list there, marked as hers.
        oni_page = ListPage(self, oni_browser).go()
        oni_lists = oni_page.go_to_my_lists()
        self.assertEqual(oni_lists.shared_lists(), [f"Get help ({self.edith})"])

        # On the list page, Oni can see it says that it's Edith's list, and he cannot share it.
        oni_page = oni_lists.open_list("Get help")
        self.assertEqual(oni_page.owner(), self.edith)
        self.assertFalse(oni_page.can_share())

        # He adds an item to the list.
        oni_page.add_item("Hi Edith!")

        # When Edith refreshes the page, she sees Oni's addition.
        edith_page.reload()
        edith_page.wait_for_rows(["1: Get help", "2: Hi Edith!"])
