"""The one way to show a URL to people: passwords and tokens replaced.

Every message, log line, progress bar, hint, stored configuration, report, bundle
and API answer that names a database or server URL passes it through
:func:`display_url`, so a ``postgresql://user:PW@host/db`` given on the command line
never reaches a terminal, a log file or a shared record. Code that must *connect*
keeps the real URL; code that must hand it to another process (a Ray worker) wraps
it in :class:`SecretURL`, whose ``repr``/``str`` are the display form.

Database URLs are rendered by SQLAlchemy itself (``URL.render_as_string(hide_password=True)``),
so the display form is exactly what SQLAlchemy would print; other URLs (HTTP servers,
Ray addresses) go through a generic scrubber of the user-info password and of query
parameters that carry credentials.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.engine import URL, make_url

HIDDEN = "***"
#: query parameters whose values are credentials (compared case-insensitively)
SECRET_PARAMETERS = frozenset({
    "password", "passwd", "pwd", "pass", "token", "access_token", "api_token", "apitoken", "key", "api_key",
    "apikey", "secret", "client_secret", "sig", "signature", "auth", "authorization", "x-amz-signature",
    "x-amz-credential", "x-amz-security-token", "sslpassword"})
#: schemes shown by the generic scrubber rather than SQLAlchemy
NON_DATABASE_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp", "ray", "file", "s3", "gs"})
_USERINFO = re.compile(r"(?P<scheme>(?:[A-Za-z][A-Za-z0-9+.-]*)?://|^)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@")


def _scrub_query(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(key.lower() in SECRET_PARAMETERS for key, _ in pairs):
        return query
    return urlencode([(key, HIDDEN if key.lower() in SECRET_PARAMETERS else value) for key, value in pairs],
                     safe="*/:,=-")


def _display_database(url: URL) -> str:
    secret_keys = [key for key in url.query if key.lower() in SECRET_PARAMETERS]
    if secret_keys:
        url = url.update_query_dict({key: HIDDEN for key in secret_keys})
    return url.render_as_string(hide_password=True)


def _display_generic(text: str) -> str:
    try:
        parts = urlsplit(text)
    except ValueError:
        return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{HIDDEN}@", text)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{HIDDEN}@{hostport}" if colon else f"{user}@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, _scrub_query(parts.query), parts.fragment))


def display_url(url: "str | URL | SecretURL | None") -> str:
    """``url`` as it may be shown or stored: password (and credential query values) replaced by ``***``.

    Accepts a string, a SQLAlchemy :class:`~sqlalchemy.engine.URL` or a :class:`SecretURL`.
    Text that is not a URL at all (``10.0.0.5:6379``, ``auto``) comes back unchanged,
    except that anything shaped like ``scheme://user:password@`` inside it is still masked.
    """
    if url is None:
        return ""
    if isinstance(url, SecretURL):
        return url.display
    if isinstance(url, URL):
        return _mask_userinfo(_display_database(url))
    text = str(url)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    shown = None
    if scheme and scheme.split("+", 1)[0] not in NON_DATABASE_SCHEMES:
        try:
            shown = _display_database(make_url(text))
        except Exception:  # noqa: BLE001 - not a SQLAlchemy URL: fall back to the generic scrubber
            shown = None
    if shown is None:
        shown = _display_generic(text) if scheme else text
    # safety net for text that merely contains a URL: any ``scheme://user:password@`` left is masked
    return _mask_userinfo(shown)


def _mask_userinfo(text: str) -> str:
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{HIDDEN}@", text)


def redact(text: str, *secrets: "str | None") -> str:
    """``text`` with every occurrence of the given secret values replaced (for third-party error messages)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, HIDDEN)
    return text


def url_password(url: "str | URL") -> str | None:
    """The password of a database URL, or None (used to scrub messages that might quote it)."""
    try:
        parsed = url if isinstance(url, URL) else make_url(str(url))
    except Exception:  # noqa: BLE001
        return None
    password = parsed.password
    return None if password is None else str(password)


class SecretURL:
    """A URL that travels between processes without showing its password.

    ``repr``/``str``/``format`` give :func:`display_url`'s form, so a worker's log line,
    a traceback's locals or Ray's task listing never shows the secret; ``reveal()``
    gives the full URL to the code that connects. It is shipped to Ray workers through
    the object store (``ray.put``), never as a task argument string.
    """

    __slots__ = ("_url", "display")

    def __init__(self, url: "str | URL"):
        self._url = url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)
        self.display = display_url(self._url)

    def reveal(self) -> str:
        """The full URL, password included: for connecting only."""
        return self._url

    def __repr__(self) -> str:
        return f"SecretURL({self.display!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, SecretURL) and other._url == self._url

    def __hash__(self) -> int:
        return hash(self._url)

    def __reduce__(self):  # pickles by value: the object store holds it, task specs only its reference
        return (SecretURL, (self._url,))
