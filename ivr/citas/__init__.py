"""The citas line: reference tables, affiliates, eligibility and the flow's actions."""
