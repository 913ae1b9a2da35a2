"""Surveys (issue 11 §4): a 1-10 rating and an optional comment, after a closed
case (WhatsApp, or SMS with a link back to WhatsApp) and after a call (keypad).

| module | what |
| --- | --- |
| ``tables`` | the ``surveys`` table (migration 0009) |
| ``store`` | create once per case / call, send, rate, comment, expire |
| ``replies`` | reading "9", "diez", "8/10", "un 9" (pure) |
| ``chat`` | the dialogue on WhatsApp, before the assistant's flow |
| ``worker`` | closed cases → survey sent on WhatsApp or by SMS |

Platform code: no line (``ivr.citas``) here; the line's keypad survey is
``ivr.citas.surveys``. docs/cases/surveys.md has the decisions.
"""
