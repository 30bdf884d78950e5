"""Keeping secrets out of the audit trail and the logs."""

from __future__ import annotations

from typing import Any

REDACTED = "[redacted]"

# Keys whose values are secrets wherever they appear (compared case-insensitively).
SECRET_KEYS = frozenset({"password", "token", "admin_token", "secret", "authorization"})


def redact(value: Any) -> Any:
    """A copy of `value` with every secret-bearing key's value replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED if str(key).lower() in SECRET_KEYS else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value
