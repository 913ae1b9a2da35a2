"""The chat channel (WhatsApp): render, replies, conversations, the runner."""
