"""The home page a first-time visitor gets, rendered once per process.

Rendering the home page was most of its time, and for a first visit it is always the same
page but for the CSRF token. The cache holds only while these invariants do:

- A first visit is a GET with no cookies and no query string: no session, so an anonymous
  visitor with no messages, on the path "/". Every other request is rendered as usual.
- The page is built by the same public `render_to_string(..., request=request)` as any other
  visit (same template, context processors and form), so a change to any of them reaches it
  at the next process start; nothing else about the visitor is kept.
- The visitor's token appears only in the page's CSRF fields, one masked token per render
  (`superlists.templating.CsrfInput`); it is swapped for a placeholder once, and each visitor's
  own token (from `get_token`, which also sets their CSRF cookie) is swapped in.
"""

import re

from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.template.loader import render_to_string

PLACEHOLDER = "csrfTokenOfTheFirstVisitHomePage"
_CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def is_first_visit(request):
    """Whether the request is a first-time visitor's plain GET (see the invariants above)."""
    return request.method == "GET" and not request.COOKIES and not request.GET


class FirstVisitPage:
    """A page rendered for the first first-time visitor, then served to every other one."""

    def __init__(self, template_name, make_context):
        self.template_name = template_name
        self.make_context = make_context
        self._html = None

    def response(self, request):
        if self._html is None:
            # Two visitors racing here each build the same page: no lock needed.
            self._html = self._render_with_placeholder(request)
        return HttpResponse(self._html.replace(PLACEHOLDER, get_token(request)))

    def _render_with_placeholder(self, request):
        html = render_to_string(self.template_name, self.make_context(), request=request)
        tokens = set(_CSRF_VALUE.findall(html))
        if len(tokens) != 1:
            raise RuntimeError(f"{self.template_name} has {len(tokens)} CSRF tokens, not one.")
        return html.replace(tokens.pop(), PLACEHOLDER)
