"""When a story fails, its first lines say why: here, a wait that meets the site's 404 page."""

from functional_tests.base import FunctionalTest
from functional_tests.pages import ErrorPage
from functional_tests.waits import wait_for


class FailureReportTest(FunctionalTest):
    def test_a_wait_that_meets_an_error_page_names_it_its_request_id_and_its_log_line(self):
        # A developer's story opens a list that isn't there and waits for something on it.
        page = ErrorPage(self)
        page.path = "/lists/no-such-list/"
        page.go().wait_until_shown()
        request_id = page.text_of("#id_request_id")

        with self.assertRaises(AssertionError) as failure:
            wait_for(lambda: self.fail("never there"), "a row that never comes", timeout=0.2)

        # The failure starts with the page it met, the request id the page shows a visitor
        # too, and what the server logged for that very request; then what was waited for.
        first, second, waited = str(failure.exception).splitlines()
        self.assertRegex(
            first,
            rf"^The page is a 404 Not Found \(GET /lists/no-such-list/, request id {request_id}, "
            # Behind a balancer, the app host's name comes first.
            r"served by (\S+ )?pid \d+\)\.$",
        )
        self.assertIn(f"req={request_id} ", second)
        self.assertIn("Not Found: /lists/no-such-list/", second)
        self.assertTrue(waited.startswith("Waited 0.2 s for a row that never comes"))
