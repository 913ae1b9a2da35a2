"""Exceptions raised by the ARI client, the event parser and the event stream.

One tree for the whole ARI boundary, so callers choose how wide to catch::

    AriError
    ├── AriConnectionError      cannot reach Asterisk, or the websocket closed
    │   └── AriTimeout          a request exceeded its timeout
    ├── AriHttpError            Asterisk answered with an error status
    │   ├── AriBadRequest       400: a parameter ARI does not accept
    │   ├── AriNotFound         404: channel/playback gone (the caller hung up)
    │   ├── AriConflict         409: e.g. the channel is not in Stasis
    │   └── AriServerError      5xx
    ├── AriAuthError            401/403: wrong ARI user or password
    └── AriProtocolError        Asterisk sent JSON we cannot understand

``AriAuthError`` is deliberately not an ``AriHttpError``: code on a call's path
catches ``AriHttpError`` (mostly ``AriNotFound``) to cope with a hung-up
caller, and a configuration error must not be swallowed there.
"""

from __future__ import annotations


class AriError(Exception):
    """Base of every error raised by ``ivr.ari``."""


class AriConnectionError(AriError):
    """Asterisk cannot be reached, or the connection broke mid-request."""


class AriTimeout(AriConnectionError):
    """A request did not complete within the client's timeout."""


class AriProtocolError(AriError):
    """Asterisk sent a body or event that does not match the ARI schema."""


class _StatusError(AriError):
    """An error carrying the HTTP exchange that produced it."""

    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {message}")
        self.status = status
        self.method = method
        self.path = path
        self.message = message


class AriAuthError(_StatusError):
    """Asterisk refused our credentials (401) or the user's permissions (403)."""


class AriHttpError(_StatusError):
    """Asterisk answered with an error status not covered by a subclass."""


class AriBadRequest(AriHttpError):
    """400: ARI rejected a parameter."""


class AriNotFound(AriHttpError):
    """404: the channel, playback or resource no longer exists."""


class AriConflict(AriHttpError):
    """409: the resource is in the wrong state (e.g. channel not in Stasis)."""


class AriServerError(AriHttpError):
    """5xx: Asterisk failed internally."""


def error_for_status(status: int, method: str, path: str, message: str) -> AriError:
    """Build the exception that matches an ARI error status."""
    if status in (401, 403):
        return AriAuthError(status, method, path, message)
    by_status: dict[int, type[AriHttpError]] = {
        400: AriBadRequest,
        404: AriNotFound,
        409: AriConflict,
    }
    cls = by_status.get(status)
    if cls is None:
        cls = AriServerError if status >= 500 else AriHttpError
    return cls(status, method, path, message)
