"""The setup of the site's pages, which are Jinja2 templates in each app's jinja2/ folder."""

# Jinja2 compiles a template to Python once, where Django's own engine walks a tree of nodes
# on every render: on the list page, the busiest one, the render took 0.13 ms instead of
# 0.22 ms, and the page as a whole about a fifth less time (README, Performance).

from functools import cached_property

import jinja2
from django.contrib.messages import get_messages
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html


def url(name, *args):
    """The path of a named URL: url('my_lists', email) in a template."""
    return reverse(name, args=args)


def environment(**options):
    env = jinja2.Environment(**options)
    env.globals.update(
        get_messages=get_messages,
        static=static,
        url=url,
    )
    return env


class CsrfInput:
    """The hidden CSRF field, made once per render however many forms the page shows."""

    # Django's Jinja2 backend gives templates a lazy csrf_input that makes a new masked token
    # each time it is printed: 64 random characters from the system's random source for every
    # form on the page. One token serves them all.

    def __init__(self, request, token=None):
        self.request = request
        self.token = token  # given only to render a page once for many visitors (see home_page)

    @cached_property
    def html(self):
        return format_html(
            '<input type="hidden" name="csrfmiddlewaretoken" value="{}">',
            self.token or get_token(self.request),
        )

    def __html__(self):
        return self.html

    def __str__(self):
        return self.html


def csrf(request):
    """Context processor: {{ csrf_input }} in every form that posts."""
    return {"csrf_input": CsrfInput(request)}
