"""The citas line's migration funnel: which call and chat outcomes mean what.

The platform counts (``ivr.cases.funnel``); the line says what its flow's
outcomes mean. Every name here is the ``outcome:`` of a hangup node of
``config/flows/citas.yaml`` (a test keeps them in step): ``booked`` (an
appointment booked, on the phone or in the chat), ``redirected_whatsapp`` (no
slot: the WhatsApp SMS was sent) and ``redirected_whatsapp_no_sms`` (no slot, no
mobile to text: the assistant's number was read out).
"""

from __future__ import annotations

from ivr.cases.funnel import FunnelDefinition, funnel_definition

CITAS_FUNNEL: FunnelDefinition = funnel_definition(
    "citas",
    booked={"booked"},
    redirected={"redirected_whatsapp", "redirected_whatsapp_no_sms"},
    chat_booked={"booked"},
)
