"""The agent desktop (issue 12): platform, knows no line."""
