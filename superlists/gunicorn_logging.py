"""gunicorn's logger, with access log lines that never hold a query string (login tokens)."""

from gunicorn import glogging


def _without_query(url):
    return url.split("?", 1)[0] if url else url


class PathOnlyLogger(glogging.Logger):
    """Access lines name the path only: a login link's token must not outlive it in a log."""

    # A token logged is usable by whoever reads the log until it is used or expires (a link
    # checker may open it and leave it unused); nginx's access log is kept path-only too.

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = _without_query(environ.get("RAW_URI", ""))
        atoms["r"] = f"{environ['REQUEST_METHOD']} {path} {environ['SERVER_PROTOCOL']}"
        atoms["q"] = "-"
        atoms["f"] = _without_query(atoms["f"])
        for key in ("{query_string}e", "{raw_uri}e", "{request_uri}e", "{http_referer}e"):
            atoms.pop(key, None)
        atoms.pop("{referer}i", None)
        return atoms
