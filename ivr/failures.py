"""What a failure was, as text for a log line or an error message: never empty.

Used wherever an exception's text becomes the reason of a log line or of
another error (``f"cannot {what}: {failure_text(exc)}"``).
"""

from __future__ import annotations


def failure_text(exc: BaseException, *, deadline_s: float | None = None) -> str:
    """``str(exc)``, or what happened when the exception carries no text.

    asyncio's deadlines (``asyncio.timeout``, ``asyncio.wait_for``) raise a bare
    ``TimeoutError`` whose ``str`` is ``""``, so a reason built from it said
    nothing (bench b66's log: ``cannot find the next due mail: ``). A timeout
    without text reads ``"no answer within 5 s"`` when its deadline is known
    (``deadline_s``, seconds) and ``"no answer in time"`` when it is not; any
    other exception without text reads as its class name (``"ConnectionResetError"``).
    A timeout that has text (aiohttp's, SQLAlchemy's pool's) keeps it.
    """
    text = str(exc).strip()
    if text:
        return text
    if isinstance(exc, TimeoutError):
        if deadline_s is not None:
            return f"no answer within {deadline_s:g} s"
        return "no answer in time"
    return type(exc).__name__
