"""How the platform says things aloud: dates, times and numbers as media URIs, per language.

``ivr.speech.es`` is Spanish (Colombia). Modules here know no line: a line's
actions call them to say its dates and times.
"""
