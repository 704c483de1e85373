import unittest

from django.test import SimpleTestCase
from django.test.runner import RemoteTestResult

from functional_tests.internals import NotesItsFailures


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
