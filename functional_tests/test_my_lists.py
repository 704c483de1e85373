"""A logged-in Edith finds the lists she made under "My lists"."""

from selenium.webdriver.common.by import By

from functional_tests.base import FunctionalTest
from functional_tests.pages import ListPage


class MyListsTest(FunctionalTest):
    def test_logged_in_users_lists_are_saved_as_my_lists(self):
        # Edith is a logged-in user.
        self.log_in_as(self.edith)

        # She goes to the home page and starts a list.
        page = ListPage(self).start_list("Reticulate splines")
        page.add_item("Immanentize eschaton")
        first_list_url = page.wait_for_list_url()
        page.wait_to_be_logged_in(self.edith)
        self.assertEqual(page.owner(), self.edith)

        # She notices a "My lists" link, for the first time, and clicks it.
        my_lists = page.go_to_my_lists()
        self.assertEqual(self.browser.find_element(By.TAG_NAME, "h1").text, "My Lists")

        # She sees that her list is in there, named after its first item.
        self.assertEqual(my_lists.owned_lists(), ["Reticulate splines"])

        # She clicks it, and it takes her to her list.
        my_lists.open_list("Reticulate splines")
        self.assertEqual(page.url(), first_list_url)

        # She decides to start another list, just to see.
        page.start_list("Click cows")

        # Her new list appears under "My lists" too, alongside the first.
        my_lists = page.go_to_my_lists()
        self.assertCountEqual(my_lists.owned_lists(), ["Reticulate splines", "Click cows"])
        self.assertEqual(my_lists.shared_lists(), ["None yet."])

        # She logs out. The "My lists" option disappears.
        my_lists.log_out()
        my_lists.wait_to_be_logged_out(self.edith)
        self.assertFalse(my_lists.has_my_lists_link())
