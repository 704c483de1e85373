"""A new visitor starts a list; the next visitor gets a list of their own."""

from selenium.webdriver.common.by import By

from functional_tests.base import FunctionalTest
from functional_tests.pages import ListPage


class NewVisitorTest(FunctionalTest):
    def test_can_start_a_list_and_a_second_visitor_gets_a_different_one(self):
        # Edith has heard about a cool new online to-do app. She goes to check out its home page.
        page = ListPage(self).go()

        # She notices the page title and header mention to-do lists.
        self.assertIn("To-Do", self.browser.title)
        self.assertIn("Start a new To-Do list", page.heading())

        # She is invited to enter a to-do item straight away.
        self.assertEqual(page.item_box().get_attribute("placeholder"), "Enter a to-do item")

        # She types "Buy peacock feathers" (her hobby is tying fly-fishing lures) and hits
        # enter: the page updates and now lists "1: Buy peacock feathers".
        page.add_item("Buy peacock feathers")
        table = self.browser.find_element(By.ID, "id_list_table")
        rows = table.find_elements(By.TAG_NAME, "tr")
        self.assertEqual([row.text for row in rows], ["1: Buy peacock feathers"])

        # She notices that her list has a unique URL.
        edith_list_url = page.wait_for_list_url()

        # There is still a box inviting her to add another item. She enters "Use peacock
        # feathers to make a fly" (Edith is very methodical), and now both items are there.
        page.add_item("Use peacock feathers to make a fly")
        page.wait_for_rows(["1: Buy peacock feathers", "2: Use peacock feathers to make a fly"])

        # Now a new user, Francis, comes along to the site, on another computer.
        self.forget_visitor()

        # Francis visits the home page. There is no sign of Edith's list.
        page.go()
        self.assertNotIn("Buy peacock feathers", page.page_text())
        self.assertNotIn("make a fly", page.page_text())

        # Francis starts a new list by entering a new item. He is less interesting than Edith.
        page.add_item("Buy milk")

        # Francis gets his own unique URL.
        francis_list_url = page.wait_for_list_url()
        self.assertNotEqual(francis_list_url, edith_list_url)

        # Again, there is no trace of Edith's list.
        self.assertNotIn("Buy peacock feathers", page.page_text())
        self.assertEqual(page.rows(), ["1: Buy milk"])

        # Satisfied, they both go back to sleep.
