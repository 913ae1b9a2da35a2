"""Incident reports (platform): the advisors' form of the contingency plan.

An advisor records an error a caller met (when, on which channels, the
affiliate's data with consent, the exact error message), linked to the
incident switch's state at that moment and to case numbers.
"""
