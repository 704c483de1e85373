"""Traffic through a deploy: clients adding items to their lists and reading them back."""

import threading
import time
import urllib.error
from dataclasses import dataclass

from rigs.form_client import ROW, FormClient


@dataclass(frozen=True)
class Answer:
    """One request: when it started, how long it took, what it got."""

    started: float
    seconds: float
    what: str
    status: object  # the HTTP status, or the name of the error when there was no answer
    ok: bool


class Traffic:
    """Clients, each on its own list, adding an item and reading the list, until stopped.

    `watch` is called every 20 ms; a change in what it returns (say, the target of the
    site's `source` link) marks a switch, and the report gives the p99 around each.
    """

    def __init__(self, base_url, clients=8, watch=None):
        self.base_url = base_url
        self.clients = clients
        self.watch = watch
        self.answers = []
        self.saved = {}  # list path -> texts the site acknowledged (302) as saved
        self.switches = []
        self.stopping = threading.Event()
        self.threads = []

    def __enter__(self):
        for index in range(self.clients):
            client = FormClient(self.base_url)
            status, headers, _ = client.post("/lists/new", {"text": f"client {index} item 0"})
            if status != 302:
                raise RuntimeError(f"could not start a list for the traffic: {status}")
            path = headers["Location"]
            self.saved[path] = [f"client {index} item 0"]
            client.get(path)
            self.threads.append(threading.Thread(target=self._client, args=(client, path)))
        if self.watch:
            self.threads.append(threading.Thread(target=self._watch))
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        time.sleep(0.5)  # a moment of traffic after the command too, on the new release
        self.stopping.set()
        for thread in self.threads:
            thread.join()

    def _client(self, client, path):
        number = 0
        while not self.stopping.is_set():
            number += 1
            text = f"{path} item {number}"
            if self._timed("add an item", 302, client.post, path, {"text": text}):
                self.saved[path].append(text)
            self._timed("read the list", 200, client.get, path)

    def _timed(self, what, expected, call, *args):
        started = time.monotonic()
        try:
            status = call(*args)[0]
        except (OSError, urllib.error.URLError) as error:
            status = type(error).__name__
        ok = status == expected
        self.answers.append(Answer(started, time.monotonic() - started, what, status, ok))
        return ok

    def _watch(self):
        last = self.watch()
        while not self.stopping.is_set():
            now = self.watch()
            if now != last:
                self.switches.append(time.monotonic())
                last = now
            time.sleep(0.02)

    def lost_items(self):
        """Items the site said it saved that are not on their list afterwards."""
        lost = []
        for path, texts in self.saved.items():
            status, _, page = FormClient(self.base_url).get(path)
            present = set(ROW.findall(page)) if status == 200 else set()
            lost += [text for text in texts if text not in present]
        return lost

    def report(self):
        """A sentence of figures, and whether there was no failed request and no lost item."""
        failed = [answer for answer in self.answers if not answer.ok]
        lost = self.lost_items()
        around = [
            answer
            for answer in self.answers
            if any(switch - 1 <= answer.started <= switch + 5 for switch in self.switches)
        ]
        during = (
            f"p99 {p99(around) * 1000:.0f} ms around the switch" if around else "no switch seen"
        )
        text = (
            f"{self.clients} clients: {len(self.answers)} requests, {len(failed)} failed, "
            f"{sum(map(len, self.saved.values()))} items saved, {len(lost)} lost; "
            f"{during}, p99 {p99(self.answers) * 1000:.0f} ms overall"
        )
        if failed:
            statuses = sorted({f"{answer.what}: {answer.status}" for answer in failed})
            text += f"; failures: {', '.join(statuses)}"
        if lost:
            text += f"; lost: {', '.join(lost[:5])}"
        return text, not failed and not lost and bool(self.switches)


def p99(answers):
    times = sorted(answer.seconds for answer in answers)
    return times[int(0.99 * (len(times) - 1))] if times else 0.0
