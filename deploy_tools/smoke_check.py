"""smoke_check: run on the server by `fab deploy`: does nginx serve the site's home page?

Usage: python smoke_check.py http|https ADDRESS PORT HOSTNAME [--timeout SECONDS]
                             [--forwarded-proto https]

Asks ADDRESS:PORT for / with HOSTNAME as the Host header, as a browser would through nginx,
and retries while the answer is a 502, 503, 504 or no answer (gunicorn's new workers may
still be starting). Prints the status (and the X-Request-ID the site sent back, so its log
lines can be found) and exits 0 on a 2xx or 3xx (but a redirect of / to itself is a loop,
and fails at once); otherwise prints what it got last and exits 1. Standard library only: it
runs with the server's /usr/bin/python3. An app host behind a balancer that terminates TLS
is asked as the balancer asks it: over http, saying X-Forwarded-Proto: https.
"""

import argparse
import http.client
import ssl
import sys
import time
from urllib.parse import urljoin, urlsplit

LOOP = (
    "a redirect loop: / redirects to itself, so Django does not believe the request came "
    "over https. nginx must pass `X-Forwarded-Proto $scheme` and the site trust it "
    "(SECURE_PROXY_SSL_HEADER, set by DJANGO_SECURE_HTTPS)."
)


def ask(scheme, address, port, hostname, forwarded_proto=None):
    if scheme == "https":
        # The server asking itself over loopback: the certificate names the public host.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(address, port, timeout=5, context=context)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=5)
    try:
        headers = {"Host": hostname}
        if forwarded_proto:
            headers["X-Forwarded-Proto"] = forwarded_proto
        connection.request("GET", "/", headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("X-Request-ID"), response.getheader("Location")
    finally:
        connection.close()


def redirects_to_itself(scheme, hostname, location):
    """Whether a redirect of / with this Host leads back to the same page."""
    here = f"{scheme}://{hostname}/"
    there = urlsplit(urljoin(here, location))
    default_port = {"http": 80, "https": 443}.get(there.scheme)
    return (there.scheme, there.hostname, there.port or default_port, there.path or "/") == (
        scheme,
        urlsplit(here).hostname,
        urlsplit(here).port or {"http": 80, "https": 443}[scheme],
        "/",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scheme", choices=["http", "https"])
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument("hostname")
    parser.add_argument("--timeout", type=float, default=15)
    parser.add_argument("--forwarded-proto", choices=["https"])
    args = parser.parse_args()
    # The scheme the site believes it was asked with: a redirect to it is a loop.
    scheme = args.forwarded_proto or args.scheme

    deadline = time.monotonic() + args.timeout
    last = "no answer"
    while True:
        try:
            status, request_id, location = ask(
                args.scheme, args.address, args.port, args.hostname, args.forwarded_proto
            )
        except OSError as error:
            last = f"{type(error).__name__}: {error}"
        else:
            last = f"HTTP {status}" + (f" request-id={request_id}" if request_id else "")
            if location and redirects_to_itself(scheme, args.hostname, location):
                print(f"{last} to {location}: {LOOP}")
                return 1
            if status < 400:
                print(last)
                return 0
            if status not in (502, 503, 504):
                break  # a 4xx or a 500 will not go away by waiting (a wrong Host, a bug)
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    print(last)
    return 1


if __name__ == "__main__":
    sys.exit(main())
