"""A refusal a view raises with its HTTP status and message; the blueprint answers it as JSON."""
from __future__ import annotations

from flask import Blueprint, jsonify


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def answer_refusals(bp: Blueprint, **extra) -> None:
    """Answer a `Refused` raised in `bp`'s views as `{"error": message, **extra}` with its status."""
    bp.register_error_handler(Refused, lambda exc: (jsonify({"error": str(exc), **extra}), exc.status))
