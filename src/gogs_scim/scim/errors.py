"""SCIM errors (RFC 7644 §3.12): one exception type, rendered as the standard body."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """A request the service refuses, with the HTTP status and `scimType` to answer.

    `detail` is shown to the client: it must never contain a secret (a token, a
    password) — name the attribute, not its value.
    """

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type

    def to_scim(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": [ERROR_SCHEMA],
            "status": str(self.status),
            "detail": self.detail,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body

    # The constructors below name the RFC's scimType values, so call sites read as
    # the RFC does.

    @classmethod
    def invalid_filter(cls, detail: str) -> ScimError:
        return cls(400, detail, "invalidFilter")

    @classmethod
    def invalid_syntax(cls, detail: str) -> ScimError:
        return cls(400, detail, "invalidSyntax")

    @classmethod
    def invalid_path(cls, detail: str) -> ScimError:
        return cls(400, detail, "invalidPath")

    @classmethod
    def no_target(cls, detail: str) -> ScimError:
        return cls(400, detail, "noTarget")

    @classmethod
    def invalid_value(cls, detail: str) -> ScimError:
        return cls(400, detail, "invalidValue")

    @classmethod
    def mutability(cls, detail: str) -> ScimError:
        return cls(400, detail, "mutability")

    @classmethod
    def too_many(cls, detail: str) -> ScimError:
        return cls(400, detail, "tooMany")

    @classmethod
    def uniqueness(cls, detail: str) -> ScimError:
        return cls(409, detail, "uniqueness")

    @classmethod
    def not_found(cls, detail: str) -> ScimError:
        return cls(404, detail)

    @classmethod
    def precondition_failed(cls, detail: str) -> ScimError:
        return cls(412, detail)

    @classmethod
    def unauthorized(cls, detail: str) -> ScimError:
        return cls(401, detail)
