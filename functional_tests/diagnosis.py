"""The cause of a failed FT in words: what each browser got, and what the server logged for it.

Read when a wait times out or a test fails: the page's status and request id, that request's
own log records, subresources that failed (with nginx's error line), which worker served a
save and which the page, and the log lines whose cause is known.
"""

import re
from urllib.parse import urlsplit

from selenium.common.exceptions import WebDriverException

from deploy_tools import serverlogs
from functional_tests.network import trail

SUBRESOURCES = {"Stylesheet", "Script", "Image", "Font", "Fetch", "XHR"}
DEBUG_PAGE = "you have <code>DEBUG = True</code>"


def _host_refused(match, browser_host):
    seen = match[1]
    cause = (
        f"The site refused its own host: Django saw Host {seen!r}, which its ALLOWED_HOSTS "
        f"does not list: add it to DJANGO_ALLOWED_HOSTS in the site's .env."
    )
    if browser_host and seen.split(":")[0] != browser_host:
        cause += (
            f" The browser asked for {browser_host!r}: a proxy in front of the site is not "
            f"passing the Host header on (nginx: proxy_set_header Host $http_host)."
        )
    return cause


def _schema(match, _):
    return (
        f"The server's database does not match the code ({match[0]}): a migration not applied "
        f"there, or never made. `fab manage showmigrations` lists what the server has applied; "
        f"`fab deploy` runs migrate."
    )


def _nginx_file(match, _):
    return (
        f"nginx could not serve {match[1]} ({match[3]}): a file missing from the site's "
        f"collected static files (never committed? collectstatic not run?) or nginx's alias "
        f"pointing elsewhere."
    )


def _nginx_upstream(match, _):
    return f"nginx could not reach gunicorn ({match[0]}): is the site's gunicorn running?"


def _worker_lost(match, _):
    return (
        f"A gunicorn worker was lost mid-request ({match[0]}): it crashed, ran out of memory, "
        f"or outlived gunicorn's --timeout."
    )


def _mail_refused(match, _):
    return f"The mail server refused the site's login email: {match[0]}"


# Known causes in log text, with the sentence that names each.
KNOWN = (
    (re.compile(r"Invalid HTTP_HOST header: '([^']*)'"), _host_refused),
    (
        re.compile(
            r"no such (?:column|table): \S+|has no column named \w+"
            r"|(?:column|relation) \"?[\w.]+\"? does not exist"
            r"|Unknown column '[^']+'"
        ),
        _schema,
    ),
    (re.compile(r'open\(\) "([^"]+)" failed \((\d+): ([^)]+)\)'), _nginx_file),
    (re.compile(r"connect\(\) to \S+ failed \([^)]*\) while connecting"), _nginx_upstream),
    (re.compile(r"upstream (?:prematurely closed connection|timed out)|WORKER TIMEOUT \(pid:\d+\)"
                r"|Worker \(pid:\d+\) was sent SIG\w+"), _worker_lost),
    (re.compile(r"SMTP\w*(?:Error|Refused)\w*: \(5\d\d, b?'[^']*'"), _mail_refused),
)  # fmt: skip


def explain(test):
    """Sentences naming what went wrong in this test, most telling first ([] if nothing known)."""
    try:
        records = test.server.log_records(test.started, getattr(test, "log_mark", None))
    except Exception as error:
        # The browser's side may still say enough; the report shows why the log is missing.
        records, causes = [], [f"(the server's log could not be read: {error})"]
    else:
        causes = []
    browsers = getattr(test, "browsers", {"edith": test.browser})
    for role, browser in browsers.items():
        the = f"{role}'s" if len(browsers) > 1 else "The"
        try:
            causes += _from_browser(browser, records, the)
        except WebDriverException as error:
            causes.append(f"({role}'s browser could not be read: {error.msg})")
    for record in records:
        for sentence in _known(record.text, _browser_host(browsers)):
            if sentence not in causes:
                causes.append(sentence)
    return causes


def _from_browser(browser, records, the):
    responses = trail(browser)
    page = responses.document()
    causes = []
    if page is not None and page.error:
        causes.append(
            f"{the} page got no answer at all ({page.method} {page.url}: {page.error}): is "
            f"nginx running and listening there?"
        )
    if page is not None and page.status >= 400:
        causes += _error_page(page, records, the, browser)
    if page is not None and DEBUG_PAGE in browser.page_source:
        causes.append(
            f"{the} page ({page.method} {page.path}) is Django's DEBUG error page, so DEBUG is "
            f"on on the server: {browser.title}."
        )
    for response in responses.read():
        if response.kind in SUBRESOURCES and (response.status >= 400 or response.error):
            causes.append(f"{the} page's {response.kind.lower()} {response.path} answered "
                          f"{response.status_text()}.")  # fmt: skip
    write = responses.last_write()
    workers = (write.worker, page.worker) if page and write else (None, None)
    if all(workers) and workers[0] != workers[1]:
        causes.append(
            f"Saved through worker {write.worker} ({write}), page served by worker "
            f"{page.worker} ({page.method} {page.path}) — state kept per process?"
        )
    return causes


def _error_page(page, records, the, browser):
    where = f"{page.method} {page.path}"
    if not page.request_id:
        # No request id: the answer did not come from the site's Django (nginx's own page).
        return [f"{the} page is a {page.status_text()} ({where}) that did not come from Django."]
    lines = [
        f"{the} page is a {page.status_text()} ({where}, request id {page.request_id}, "
        f"served by {page.worker or 'an unnamed process'})."
    ]
    mine = serverlogs.for_request(records, page.request_id)
    for record in mine:
        lines += _known(record.text, urlsplit(browser.current_url).hostname)
    if mine and len(lines) == 1:
        # No known cause: the last line of the request's last record is the exception.
        lines.append(f"The server logged for it: {mine[-1].lines[-1].strip()}")
    elif not mine:
        lines.append(f"The server's log has no line with req={page.request_id}.")
    return lines


def _known(text, browser_host):
    return [
        explain(match, browser_host)
        for pattern, explain in KNOWN
        if (match := pattern.search(text))
    ]


def _browser_host(browsers):
    for browser in browsers.values():
        try:
            return urlsplit(browser.current_url).hostname
        except WebDriverException:
            continue
    return None
