"""The flattened attribute index (`scim_attribute_values`) of one resource.

Rewritten whole with every change of a resource's document, in the same transaction,
so filters never see a document and an index that disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert

from gogs_scim.scim.flatten import IndexedValue
from gogs_scim.store.tables import attribute_values


def delete_index(conn: Connection, resource_type: str, resource_id: str) -> None:
    conn.execute(
        delete(attribute_values).where(
            attribute_values.c.resource_type == resource_type,
            attribute_values.c.resource_id == resource_id,
        )
    )


def write_index(
    conn: Connection, resource_type: str, resource_id: str, rows: Sequence[IndexedValue]
) -> None:
    """Replace the resource's index rows with `rows` (from `scim.flatten.flatten`)."""
    delete_index(conn, resource_type, resource_id)
    if rows:
        conn.execute(
            insert(attribute_values),
            [
                {
                    "resource_type": resource_type,
                    "resource_id": resource_id,
                    "path": row.path,
                    "item": row.item,
                    "value_exact": row.value_exact,
                    "value_folded": row.value_folded,
                    "value_number": row.value_number,
                }
                for row in rows
            ],
        )
