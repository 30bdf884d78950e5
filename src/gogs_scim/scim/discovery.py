"""The discovery endpoints' bodies (RFC 7644 §4): what this service really supports."""

from __future__ import annotations

from typing import Any

from gogs_scim.scim.schema import RESOURCES, ResourceSchema, all_schemas


def service_provider_config(base_url: str, max_results: int) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": True},
        # Bulk is not implemented: IdPs that matter here do not send it.
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": max_results},
        # A password sent by the IdP becomes the Gogs password (provisioning.password).
        "changePassword": {"supported": True},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A SCIM token created with `gogs-scim token create`, sent as "
                "'Authorization: Bearer <token>'.",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base_url.rstrip('/')}/ServiceProviderConfig",
        },
    }


def resource_type(resource: ResourceSchema, base_url: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": resource.name,
        "name": resource.name,
        "endpoint": resource.endpoint,
        "description": resource.description,
        "schema": resource.core.urn,
        "schemaExtensions": [
            {"schema": extension.urn, "required": False} for extension in resource.extensions
        ],
        "meta": {
            "resourceType": "ResourceType",
            "location": f"{base_url.rstrip('/')}/ResourceTypes/{resource.name}",
        },
    }


def resource_types(base_url: str) -> list[dict[str, Any]]:
    return [resource_type(resource, base_url) for resource in RESOURCES]


def schemas(base_url: str) -> list[dict[str, Any]]:
    return [
        schema.to_scim(f"{base_url.rstrip('/')}/Schemas/{schema.urn}") for schema in all_schemas()
    ]


def list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
