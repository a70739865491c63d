"""Presence, control channel, information lookup and the status table."""
