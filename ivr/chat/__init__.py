"""The chat channel: conversations, rendering and replies (issue 10)."""
