"""Several people add to one list at once, each in a fresh session: nobody's item is lost."""

from functional_tests.base import FunctionalTest
from functional_tests.pages import ListPage

HELPERS = ("Francis", "Gina", "Hamid")


class SeveralWorkersTest(FunctionalTest):
    def test_items_added_from_several_fresh_sessions_are_all_visible(self):
        # Edith starts a list for the office party and passes its address round the office.
        page = ListPage(self).start_list("Plan the party")
        list_url = page.wait_for_list_url()

        # Her colleagues open it one after another, each on their own computer (a new
        # session each time, so on a server with several workers each may reach a different
        # one), and add what they will bring.
        for number, name in enumerate(HELPERS, start=2):
            self.forget_visitor()
            self.browser.get(list_url)
            page.add_item(f"{name} brings snacks", expect_row=number)

        # Back at her desk, Edith sees every item, in order, each time she looks.
        self.forget_visitor()
        self.browser.get(list_url)
        expected = ["1: Plan the party"] + [
            f"{number}: {name} brings snacks" for number, name in enumerate(HELPERS, start=2)
        ]
        for _ in range(2):
            page.reload()
            # A failure here names the workers that saved and served, if they differ.
            with self.explaining():
                self.assertEqual(page.rows(), expected)
