import unittest
import urllib.request

from django.core.handlers.wsgi import WSGIHandler
from django.test import LiveServerTestCase, SimpleTestCase
from django.test.runner import RemoteTestResult

from functional_tests.internals import NotesItsFailures, OneLiveServerPerProcess


def story(seen):
    """A test case whose tearDown records what each test noted of its own failures."""

    # Made here, not at module level, so that the test runner does not run it itself.
    class Story(NotesItsFailures, unittest.TestCase):
        def test_fails(self):
            self.assertEqual(1, 2)

        def test_errors(self):
            raise RuntimeError("kaboom")

        def test_passes(self):
            pass

        def tearDown(self):
            seen[self._testMethodName] = self.failures_so_far()

    return Story


class NotesItsFailuresTest(SimpleTestCase):
    def run_story(self, result):
        seen = {}
        unittest.defaultTestLoader.loadTestsFromTestCase(story(seen)).run(result)
        return seen

    def assert_failures_seen_before_teardown(self, seen):
        self.assertIn("AssertionError: 1 != 2", seen["test_fails"][0])
        self.assertIn("RuntimeError: kaboom", seen["test_errors"][0])
        self.assertEqual(seen["test_passes"], [])

    def test_a_test_sees_its_failures_in_its_teardown(self):
        result = unittest.TestResult()
        self.assert_failures_seen_before_teardown(self.run_story(result))
        self.assertEqual((len(result.failures), len(result.errors)), (1, 1))

    def test_in_a_parallel_worker_too(self):
        # --parallel workers report through RemoteTestResult, whose lists are DummyLists.
        result = RemoteTestResult()
        self.assert_failures_seen_before_teardown(self.run_story(result))
        self.assertEqual(
            sorted(event[0] for event in result.events if event[0].startswith("add")),
            ["addError", "addFailure", "addSuccess"],
        )


class _Hello(WSGIHandler):
    """Whatever the site answers, the live server in these tests says hello."""

    def __init__(self, application):
        super().__init__()

    def __call__(self, environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]


def story_with_a_live_server():
    """A test class served by one live server per process, as the FTs are."""

    # Made here, not at module level, so that the test runner does not run it itself.
    class Story(OneLiveServerPerProcess, LiveServerTestCase):
        static_handler = _Hello

        def runTest(self):
            pass

    return Story


class OneLiveServerPerProcessTest(SimpleTestCase):
    def live_url_of_a_class(self):
        story = story_with_a_live_server()
        story.setUpClass()
        try:
            return story.live_server_url
        finally:
            story.tearDownClass()
            story.doClassCleanups()

    def test_every_class_gets_the_same_address_and_it_keeps_answering(self):
        # The browsers outlive the classes: one origin keeps their cache of static files warm.
        first, second = self.live_url_of_a_class(), self.live_url_of_a_class()
        self.assertEqual(first, second)
        with urllib.request.urlopen(second + "/", timeout=5) as response:
            self.assertEqual(response.read(), b"hello")
