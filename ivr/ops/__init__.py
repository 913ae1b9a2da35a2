"""Operations: live flags and variables, contingency windows, the incident switch,
the booking-service circuit breaker, the audit trail, and the ops API and console.
"""
