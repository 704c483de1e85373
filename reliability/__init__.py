"""Reliability suite: real gunicorn, real databases, real faults, on loopback only."""
