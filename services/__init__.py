"""Supervision logic with no web code: each module owns its SQL and its rules."""
