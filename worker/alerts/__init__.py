"""Alerts: the payload every channel sends, and delivery from the outbox."""
