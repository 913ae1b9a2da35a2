"""The agent desktop (issue 12)."""
