"""Resource versions as ETags, and the If-Match precondition (RFC 7644 §3.14)."""

from __future__ import annotations

from gogs_scim.scim.errors import ScimError


def etag(version: int) -> str:
    """Weak: equal versions mean equal SCIM representations, not equal bytes."""
    return f'W/"{version}"'


def check_if_match(version: int, if_match: str | None) -> None:
    """412 unless `If-Match` is absent, `*`, or names the current version."""
    if if_match is None or if_match.strip() == "*":
        return
    wanted = {tag.strip() for tag in if_match.split(",")}
    current = etag(version)
    # A strong tag is compared as weak: our versions are opaque counters either way.
    if current not in wanted and current.removeprefix("W/") not in wanted:
        raise ScimError.precondition_failed(
            f"If-Match {if_match} does not match the current version {current}"
        )
