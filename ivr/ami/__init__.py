"""Asterisk Manager Interface and FastAGI, behind our own small API.

panoramisk is used only inside this package; the rest of the project sees
``AmiConnection``, ``FastAgiServer``, ``AgiRequest`` and the errors in
``ivr.ami.errors``.
"""

from ivr.ami.errors import (
    AgiCommandFailed,
    AgiError,
    AgiHangup,
    AgiTimeout,
    AmiActionFailed,
    AmiAuthError,
    AmiConnectionError,
    AmiError,
    AmiTimeout,
)
from ivr.ami.fastagi import HEALTH_ROUTE, AgiHandler, AgiRequest, AgiResult, FastAgiServer
from ivr.ami.manager import AmiConnection, AmiEvent, AmiEventHandler

__all__ = [
    "HEALTH_ROUTE",
    "AgiCommandFailed",
    "AgiError",
    "AgiHandler",
    "AgiHangup",
    "AgiRequest",
    "AgiResult",
    "AgiTimeout",
    "AmiActionFailed",
    "AmiAuthError",
    "AmiConnection",
    "AmiConnectionError",
    "AmiError",
    "AmiEvent",
    "AmiEventHandler",
    "AmiTimeout",
    "FastAgiServer",
]
