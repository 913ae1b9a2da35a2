"""Citas IVR: a telephony IVR platform on Asterisk ARI."""
