"""The site looks like a site: the stylesheets load and the item box sits in the middle."""

from functional_tests.base import FunctionalTest
from functional_tests.pages import ListPage


class LayoutAndStylingTest(FunctionalTest):
    def assert_centred(self, page):
        box = page.item_box()
        width = self.browser.execute_script("return document.documentElement.clientWidth")
        middle = box.location["x"] + box.size["width"] / 2
        self.assertAlmostEqual(middle, width / 2, delta=10)

    def test_item_box_is_centred_and_bootstrap_is_applied(self):
        # Edith goes to the home page on her laptop.
        page = ListPage(self).go()

        # She notices the input box is nicely centred.
        self.assert_centred(page)

        # It is a big, friendly Bootstrap box, not a bare browser default: the stylesheet
        # really reached her browser.
        box = page.item_box()
        self.assertGreater(box.size["height"], 40)
        self.assertNotEqual(box.value_of_css_property("border-radius"), "0px")
        self.assertEqual(page.find("nav").value_of_css_property("display"), "flex")

        # She starts a new list and sees the input is nicely centred there too.
        page.add_item("testing")
        self.assert_centred(page)
