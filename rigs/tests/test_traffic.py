"""The rehearsal's traffic check fails on a failed request, a lost item, or no switch seen."""

import unittest
from unittest import mock

from rigs.traffic import Answer, Traffic


def traffic_with(answers, lost=(), switches=(10.0,)):
    traffic = Traffic("http://127.0.0.1:9", clients=2)
    traffic.answers = list(answers)
    traffic.saved = {"/lists/a/": ["one", "two"]}
    traffic.switches = list(switches)
    traffic.lost_items = mock.Mock(return_value=list(lost))
    return traffic


class TrafficReportTest(unittest.TestCase):
    good = [Answer(9.5 + n / 10, 0.01 * n, "add an item", 302, True) for n in range(20)]

    def test_no_failure_and_nothing_lost_passes_with_the_figures(self):
        text, ok = traffic_with(self.good).report()
        self.assertTrue(ok)
        self.assertIn("20 requests, 0 failed, 2 items saved, 0 lost", text)
        self.assertIn("p99 180 ms around the switch", text)

    def test_a_failed_request_a_lost_item_or_no_switch_fails(self):
        bad_gateway = Answer(10.1, 0.2, "read the list", 502, False)
        for traffic, said in (
            (traffic_with([*self.good, bad_gateway]), "failures: read the list: 502"),
            (traffic_with(self.good, lost=["two"]), "1 lost"),
            (traffic_with(self.good, switches=()), "no switch seen"),
        ):
            with self.subTest(said=said):
                text, ok = traffic.report()
                self.assertFalse(ok)
                self.assertIn(said, text)
