"""Cases ("radicar caso"): a helpdesk record per request the line could not serve.

Platform code (it knows no citas): the model and store (``model``, ``store``,
``tables``; migration 0007), case numbers (``number``), the business calendar
(``calendar``), SLA clocks (``sla``) and the cases configuration (``config``).
"""
