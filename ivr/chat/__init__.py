"""The chat channel (issue 10): render menus as WhatsApp messages, read the
person's replies, keep conversations durable, and run them through the flow."""
