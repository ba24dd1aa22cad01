"""Escalation: incidents, the human-acknowledged dispatch queue, and messages to reporters."""
