"""Exceptions raised by the AMI connection and the FastAGI server.

Two trees, one per protocol, so callers choose how wide to catch::

    AmiError
    ├── AmiConnectionError      cannot reach Asterisk, or the connection dropped
    │   └── AmiTimeout          an action (or the TCP connect) exceeded its timeout
    ├── AmiActionFailed         Asterisk answered Response: Error/Failure (.response)
    └── AmiAuthError            Login refused: wrong AMI user, secret or ACL

    AgiError
    ├── AgiHangup               the channel hung up (HANGUP line or socket closed)
    ├── AgiTimeout              Asterisk did not answer an AGI command in time
    └── AgiCommandFailed        an AGI command answered 510/520/result=-1 (.result)

``AmiAuthError`` is deliberately not an ``AmiActionFailed`` (as ``AriAuthError``
is not an ``AriHttpError``): a caller that tolerates a failed Originate must not
swallow a configuration error. ``AmiTimeout`` is an ``AmiConnectionError``
because, seen from the IVR, an Asterisk that does not answer is unreachable.
"""

from __future__ import annotations

from collections.abc import Mapping


class AmiError(Exception):
    """Base of every error raised by ``ivr.ami.manager``."""


class AmiConnectionError(AmiError):
    """Asterisk's AMI port cannot be reached, or the connection broke mid-action."""


class AmiTimeout(AmiConnectionError):
    """An action did not get its response within the connection's timeout."""


class AmiActionFailed(AmiError):
    """Asterisk answered an action with an error; ``response`` holds its headers."""

    def __init__(self, action: str, response: Mapping[str, str]) -> None:
        message = response.get("Message") or response.get("Reason") or "no message"
        super().__init__(f"AMI {action} failed: {message}")
        self.action = action
        self.response = dict(response)


class AmiAuthError(AmiError):
    """Asterisk refused the Login action (credentials, ``permit``/``deny`` ACL)."""

    def __init__(self, username: str, response: Mapping[str, str]) -> None:
        message = response.get("Message") or "no message"
        super().__init__(f"AMI login as {username!r} refused: {message}")
        self.username = username
        self.response = dict(response)


class AgiError(Exception):
    """Base of every error raised by ``ivr.ami.fastagi``."""


class AgiHangup(AgiError):
    """The channel hung up while its FastAGI request was running."""


class AgiTimeout(AgiError):
    """Asterisk did not answer an AGI command within the server's timeout."""


class AgiCommandFailed(AgiError):
    """Asterisk answered an AGI command with an error code or ``result=-1``."""

    def __init__(self, command: str, result: Mapping[str, object]) -> None:
        detail = result.get("msg") or result.get("error") or "error"
        super().__init__(f"AGI {command.split(' ', 1)[0]} failed: {detail}")
        self.command = command
        self.result = dict(result)
