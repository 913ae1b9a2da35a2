"""The agent desktop (issue 12): a contact centre's desk, platform side.

Queues, service levels, agent profiles and agents (``config``), the contacts agents
take, the script steps they follow and their presence (``store``, ``tables``,
``model``), the script tree's versions. It knows no line: the citas line's pop
source lives in ``ivr.citas.desk``. docs/desk/core.md.
"""
