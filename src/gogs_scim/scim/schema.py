"""The attribute catalog: what each SCIM resource type is made of (RFC 7643 §2, §7).

Every schema-driven piece of the SCIM layer (payload normalisation, PATCH, filters,
projection, the `/Schemas` endpoint) asks this catalog, so that what we advertise is
exactly what we enforce. The core and Enterprise schemas are taken from
`scim2-models`; the Gogs extension is ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from scim2_models import Attribute as ModelAttribute
from scim2_models import EnterpriseUser, Group, User

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GOGS_USER_SCHEMA = "urn:gogs-scim:params:scim:schemas:extension:gogs:2.0:User"
GOGS_GROUP_SCHEMA = "urn:gogs-scim:params:scim:schemas:extension:gogs:2.0:Group"


@dataclass(frozen=True)
class AttributeDef:
    """One attribute or sub-attribute, with the characteristics of RFC 7643 §2.2."""

    name: str
    type: str = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    description: str = ""
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[AttributeDef, ...] = ()

    def sub(self, name: str) -> AttributeDef | None:
        """The sub-attribute called `name`, matched case-insensitively."""
        folded = name.lower()
        for attribute in self.sub_attributes:
            if attribute.name.lower() == folded:
                return attribute
        return None

    @property
    def is_complex(self) -> bool:
        return self.type == "complex"

    def to_scim(self) -> dict[str, Any]:
        """The attribute as `/Schemas` shows it."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        if self.sub_attributes:
            out["subAttributes"] = [sub.to_scim() for sub in self.sub_attributes]
        return out


@dataclass(frozen=True)
class SchemaDef:
    """One schema (core or extension): its URN and top-level attributes."""

    urn: str
    name: str
    description: str
    attributes: tuple[AttributeDef, ...]

    def attribute(self, name: str) -> AttributeDef | None:
        folded = name.lower()
        for attribute in self.attributes:
            if attribute.name.lower() == folded:
                return attribute
        return None

    def to_scim(self, location: str) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.urn,
            "name": self.name,
            "description": self.description,
            "attributes": [attribute.to_scim() for attribute in self.attributes],
            "meta": {"resourceType": "Schema", "location": location},
        }


@dataclass(frozen=True)
class ResolvedAttribute:
    """Where an attribute path points: schema, top-level attribute, maybe a sub-attribute."""

    schema: SchemaDef
    attribute: AttributeDef
    sub_attribute: AttributeDef | None = None

    @property
    def is_extension(self) -> bool:
        return self.schema.urn not in (USER_SCHEMA, GROUP_SCHEMA, "")

    @property
    def target(self) -> AttributeDef:
        """The attribute the path finally designates."""
        return self.sub_attribute or self.attribute

    @property
    def canonical_path(self) -> str:
        """`emails.value`, or `urn:...:User:employeeNumber` for extension attributes."""
        head = self.attribute.name
        if self.is_extension:
            head = f"{self.schema.urn}:{head}"
        if self.sub_attribute is not None:
            return f"{head}.{self.sub_attribute.name}"
        return head


# Attributes every resource has (RFC 7643 §3.1). They live outside any schema URN.
COMMON_SCHEMA = SchemaDef(
    urn="",
    name="Common",
    description="Attributes common to all resources",
    attributes=(
        AttributeDef(
            "id", case_exact=True, mutability="readOnly", returned="always", uniqueness="server"
        ),
        AttributeDef("externalId", case_exact=True),
        AttributeDef(
            "meta",
            type="complex",
            mutability="readOnly",
            sub_attributes=(
                AttributeDef("resourceType", case_exact=True, mutability="readOnly"),
                AttributeDef("created", type="dateTime", mutability="readOnly"),
                AttributeDef("lastModified", type="dateTime", mutability="readOnly"),
                AttributeDef("location", type="reference", case_exact=True, mutability="readOnly"),
                AttributeDef("version", case_exact=True, mutability="readOnly"),
            ),
        ),
    ),
)


@dataclass(frozen=True)
class ResourceSchema:
    """A resource type: its endpoint, core schema and extensions."""

    name: str
    endpoint: str
    description: str
    core: SchemaDef
    extensions: tuple[SchemaDef, ...] = field(default=())

    @property
    def schemas(self) -> tuple[SchemaDef, ...]:
        return (self.core, *self.extensions)

    def extension(self, urn: str) -> SchemaDef | None:
        folded = urn.lower()
        for extension in self.extensions:
            if extension.urn.lower() == folded:
                return extension
        return None

    def resolve(
        self, attr: str, sub_attr: str | None = None, uri: str | None = None
    ) -> ResolvedAttribute | None:
        """Resolve an attribute path case-insensitively (RFC 7644 §3.10); None if unknown."""
        if uri is not None:
            if uri.lower() == self.core.urn.lower():
                candidates: Iterable[SchemaDef] = (self.core, COMMON_SCHEMA)
            else:
                extension = self.extension(uri)
                if extension is None:
                    return None
                candidates = (extension,)
        else:
            candidates = (COMMON_SCHEMA, self.core)
        for schema in candidates:
            attribute = schema.attribute(attr)
            if attribute is None:
                continue
            if sub_attr is None:
                return ResolvedAttribute(schema, attribute)
            sub = attribute.sub(sub_attr)
            if sub is None:
                return None
            return ResolvedAttribute(schema, attribute, sub)
        return None

    def resolve_dotted(self, path: str) -> ResolvedAttribute | None:
        """Resolve `name.givenName` or `urn:...:User:manager.value` written as one string."""
        uri: str | None = None
        rest = path
        lowered = path.lower()
        for schema in self.schemas:
            prefix = schema.urn.lower() + ":"
            if lowered.startswith(prefix):
                uri, rest = schema.urn, path[len(prefix) :]
                break
        attr, _, sub_attr = rest.partition(".")
        return self.resolve(attr, sub_attr or None, uri)

    def iter_attributes(self) -> Iterator[tuple[SchemaDef, AttributeDef]]:
        for schema in (COMMON_SCHEMA, *self.schemas):
            for attribute in schema.attributes:
                yield schema, attribute


def _from_model(attribute: ModelAttribute) -> AttributeDef:
    def text(value: Any) -> str:
        return str(getattr(value, "value", value)) if value is not None else ""

    return AttributeDef(
        name=attribute.name or "",
        type=text(attribute.type) or "string",
        multi_valued=bool(attribute.multi_valued),
        required=bool(getattr(attribute.required, "value", attribute.required)),
        case_exact=bool(getattr(attribute.case_exact, "value", attribute.case_exact)),
        mutability=text(attribute.mutability) or "readWrite",
        returned=text(attribute.returned) or "default",
        uniqueness=text(attribute.uniqueness) or "none",
        description=" ".join((attribute.description or "").split()),
        canonical_values=tuple(str(v) for v in attribute.canonical_values or ()),
        reference_types=tuple(str(v) for v in attribute.reference_types or ()),
        sub_attributes=tuple(_from_model(sub) for sub in attribute.sub_attributes or ()),
    )


def _schema_from_model(model: Any) -> SchemaDef:
    schema = model.to_schema()
    # `id`, `externalId` and `meta` are common attributes (COMMON_SCHEMA), not the schema's own.
    attributes = tuple(
        _from_model(attribute)
        for attribute in schema.attributes or ()
        if attribute.name not in ("id", "externalId", "meta")
    )
    return SchemaDef(
        urn=schema.id,
        name=schema.name or schema.id,
        description=schema.description or "",
        attributes=attributes,
    )


def _with_attribute(schema: SchemaDef, name: str, **changes: Any) -> SchemaDef:
    attributes = tuple(
        AttributeDef(**{**attribute.__dict__, **changes}) if attribute.name == name else attribute
        for attribute in schema.attributes
    )
    return SchemaDef(schema.urn, schema.name, schema.description, attributes)


GOGS_USER_EXTENSION = SchemaDef(
    urn=GOGS_USER_SCHEMA,
    name="GogsUser",
    description="What gogs-scim did with this user in Gogs. Read-only: set by the bridge.",
    attributes=(
        AttributeDef(
            "login",
            case_exact=False,
            mutability="readOnly",
            uniqueness="server",
            description="The Gogs username assigned to this user. Derived once from "
            "userName and kept across renames in the identity provider.",
        ),
        AttributeDef(
            "userId",
            type="integer",
            mutability="readOnly",
            description="The numeric id of the Gogs account, once it exists.",
        ),
        AttributeDef(
            "adopted",
            type="boolean",
            mutability="readOnly",
            description="True when the Gogs account existed before and was adopted.",
        ),
        AttributeDef(
            "syncState",
            mutability="readOnly",
            canonical_values=("pending", "synced", "error"),
            description="Whether Gogs matches this resource yet: pending (a change waits "
            "for Gogs), synced, or error (see syncError).",
        ),
        AttributeDef(
            "syncError",
            mutability="readOnly",
            description="The last error Gogs returned for this user, if any.",
        ),
        AttributeDef(
            "residualAccess",
            multi_valued=True,
            mutability="readOnly",
            description="Ways into Gogs that deprovisioning could not close for this "
            "deactivated or deleted user, one sentence each; absent when none.",
        ),
    ),
)

# Emails in Gogs are always lowercased by the bridge; userName uniqueness is server-wide.
_USER_CORE = _schema_from_model(User)

USER_RESOURCE = ResourceSchema(
    name="User",
    endpoint="/Users",
    description="A person who gets a Gogs account",
    core=_USER_CORE,
    extensions=(_schema_from_model(EnterpriseUser), GOGS_USER_EXTENSION),
)

GOGS_GROUP_EXTENSION = SchemaDef(
    urn=GOGS_GROUP_SCHEMA,
    name="GogsGroup",
    description="The Gogs teams this group feeds and whether Gogs follows yet. "
    "Read-only: set by the bridge from its mapping rules.",
    attributes=(
        AttributeDef(
            "syncState",
            mutability="readOnly",
            canonical_values=("pending", "synced", "error"),
            description="Whether the Gogs teams match this group yet: pending (a change "
            "waits for Gogs), synced (also: no rule maps the group), or error (see "
            "syncError).",
        ),
        AttributeDef(
            "syncError",
            mutability="readOnly",
            description="Why a team of this group does not match it (missing org, Gogs "
            "refused, permission mismatch); absent when none.",
        ),
        AttributeDef(
            "teams",
            type="complex",
            multi_valued=True,
            mutability="readOnly",
            description="The Gogs organization teams the bridge's mapping rules give this "
            "group's members; empty when no rule maps the group.",
            sub_attributes=(
                AttributeDef("org", mutability="readOnly", description="The Gogs organization."),
                AttributeDef("team", mutability="readOnly", description="The team's name."),
                AttributeDef(
                    "permission",
                    mutability="readOnly",
                    canonical_values=("read", "write", "admin"),
                    description="The access the mapping rule asks the team to give.",
                ),
            ),
        ),
    ),
)

GROUP_RESOURCE = ResourceSchema(
    name="Group",
    endpoint="/Groups",
    description="A group whose members may be mapped to Gogs organization teams",
    core=_with_attribute(_schema_from_model(Group), "displayName", required=True),
    extensions=(GOGS_GROUP_EXTENSION,),
)

RESOURCES: tuple[ResourceSchema, ...] = (USER_RESOURCE, GROUP_RESOURCE)


def all_schemas() -> tuple[SchemaDef, ...]:
    """Every schema we serve at `/Schemas`, in a stable order."""
    return tuple(schema for resource in RESOURCES for schema in resource.schemas)
