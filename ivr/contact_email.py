"""A contact e-mail address a person typed (a chat) or a directory holds.

One rule for every address the product stores for answering someone: the
syntax of RFC 5321/5322 as the ``email-validator`` library checks it (a
maintained implementation of the RFCs, with the length limits and the domain
rules, where a regular expression of ours would be either too lax or refuse
real addresses), with two choices of ours:

- no deliverability check (no DNS query): the chat must answer at once and
  offline, and a domain's MX can be missing for a moment;
- ``strict=True``: the RFC 5321 length limits too (a mailbox of at most 64
  characters), which the library leaves out by default;
- ASCII mailboxes only (``allow_smtputf8=False``): the answer goes out over
  SMTP (``ivr.mail``), and a server without SMTPUTF8 refuses ``josé@…``; a
  person with such an address gets the answer by WhatsApp or SMS instead.
  Internationalised domains (``ñandú.co``) are fine: they travel as IDNA.

The address is kept as the library normalises it (the domain lower-cased).

>>> normalize_email(" Ana.Gomez@Example.ORG ")
'Ana.Gomez@example.org'
>>> normalize_email("ana@localhost") is None
True
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def normalize_email(text: str) -> str | None:
    """The address in ``text`` (surrounding spaces dropped), normalised; None when
    ``text`` is not one valid address by the module's rule."""
    try:
        checked = validate_email(
            text.strip(), check_deliverability=False, allow_smtputf8=False, strict=True
        )
    except EmailNotValidError:
        return None
    return str(checked.normalized)
