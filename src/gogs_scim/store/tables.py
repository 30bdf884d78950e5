"""The store's schema: what the IdP asked for, and how far Gogs has followed.

One schema for SQLite and PostgreSQL; Alembic migrations (store/migrations) create it.
SCIM ids are ours (UUID strings), so a resource exists before Gogs has it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A SCIM User as the IdP last described it. `document` holds the canonical SCIM JSON
# without `id`, `meta` and `password` (those come from columns or are never kept).
# The indexed columns serve the filters IdPs send on every sync (userName, externalId).
users = Table(
    "scim_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_name", String(255), nullable=False),
    # lower(userName); NULL once the user is deleted, so the name is free again.
    Column("user_name_folded", String(255), nullable=True, unique=True),
    Column("external_id", String(255), nullable=True, index=True),
    Column("display_name", String(255), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("document", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # SCIM DELETE hides the resource at once; the row stays until Gogs has followed.
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    # The Gogs side: assigned once, kept across renames in the IdP.
    Column("gogs_login", String(40), nullable=True),
    Column("gogs_login_folded", String(40), nullable=True, unique=True),
    Column("gogs_user_id", Integer, nullable=True),
    Column("gogs_adopted", Boolean, nullable=False, default=False),
    Column("sync_state", String(16), nullable=False),
    Column("sync_error", Text, nullable=True),
    # When the Gogs password was scrambled for a deactivation; NULL while active.
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # Ways into Gogs deprovisioning could not close (a JSON list of sentences); NULL
    # when there are none (docs/deprovisioning.md).
    Column("residual_access", JSON(none_as_null=True), nullable=True),
    # Unsorted pages are ordered by creation, then id: this keeps them index-ordered.
    Index("ix_scim_users_created_at_id", "created_at", "id"),
)

groups = Table(
    "scim_groups",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("display_name", String(255), nullable=False),
    Column("display_name_folded", String(255), nullable=False, index=True),
    Column("external_id", String(255), nullable=True, index=True),
    Column("document", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    Column("sync_state", String(16), nullable=False),
    Column("sync_error", Text, nullable=True),
)

# Group membership is relational so that a 20,000-member group is never one JSON blob
# that must be rewritten for one PATCH, nor read to answer excludedAttributes=members.
group_members = Table(
    "scim_group_members",
    metadata,
    Column(
        "group_id", String(36), ForeignKey("scim_groups.id", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "user_id", String(36), ForeignKey("scim_users.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("display", String(255), nullable=True),
    Index("ix_scim_group_members_user_id", "user_id"),
)

# Every attribute value of every resource, flattened, so that any filter term becomes
# an indexed lookup rather than a scan of JSON documents. `item` numbers the elements
# of a multi-valued attribute, which correlates `emails[type eq "work" and value co "x"]`.
attribute_values = Table(
    "scim_attribute_values",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("resource_type", String(16), nullable=False),
    Column("resource_id", String(36), nullable=False),
    Column("path", String(255), nullable=False),
    Column("item", Integer, nullable=False),
    Column("value_exact", String(1024), nullable=True),
    Column("value_folded", String(1024), nullable=True),
    Column("value_number", Float, nullable=True),
    Index("ix_scim_attribute_values_lookup", "resource_type", "path", "value_folded"),
    Index("ix_scim_attribute_values_exact", "resource_type", "path", "value_exact"),
    Index("ix_scim_attribute_values_resource", "resource_id", "path", "item"),
)

# Who the bridge itself added to a Gogs team. A non-exclusive mapping leaves members
# added by hand alone, yet must still remove those it added once no group grants them:
# Gogs cannot say who added a member, so the bridge remembers it here.
team_grants = Table(
    "team_grants",
    metadata,
    Column("team_key", String(36), primary_key=True),
    Column("login_folded", String(40), primary_key=True),
    Column("org", String(255), nullable=False),
    Column("team", String(255), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
)

# The outbox: "make Gogs match resource X". One row per resource (coalesced), claimed by
# one worker at a time (FOR UPDATE SKIP LOCKED on PostgreSQL), retried with backoff.
converge_jobs = Table(
    "converge_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("resource_type", String(16), nullable=False),
    Column("resource_id", String(36), nullable=False),
    Column("reason", String(255), nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    # Shadow mode (provisioning.mode) recorded this job's plan then; cleared when the
    # job is re-armed, so the shadow worker plans each change once. Apply ignores it.
    Column("planned_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("resource_type", "resource_id"),
)

# Every reconciliation (`gogs-scim reconcile`, or serve's schedule): what it found and
# repaired. /readyz and the metrics read the last complete one; `complete` is False
# while it runs and when it could not finish (then `error` says why).
reconcile_runs = Table(
    "reconcile_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trigger", String(16), nullable=False),
    Column("worker", String(64), nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("complete", Boolean, nullable=False),
    # Drift found by the comparison, repaired by this run, and left after it.
    Column("drift_found", Integer, nullable=True),
    Column("repaired", Integer, nullable=True),
    Column("drift_left", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_reconcile_runs_complete_finished_at", "complete", "finished_at"),
)

# The schedule of serve's reconciliation, one row: the replica that takes the lease
# (a conditional UPDATE, atomic on SQLite and PostgreSQL) runs it; the others skip
# that interval.
reconcile_schedule = Table(
    "reconcile_schedule",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("next_run_at", DateTime(timezone=True), nullable=False),
    Column("held_by", String(64), nullable=True),
    Column("held_until", DateTime(timezone=True), nullable=True),
)

# The audit trail: append-only; `hash` chains each record to the one before it.
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("actor", String(255), nullable=True),
    Column("action", String(64), nullable=False),
    Column("resource_type", String(16), nullable=True),
    Column("resource_id", String(36), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_resource", "resource_type", "resource_id"),
)

# SCIM bearer tokens issued by `gogs-scim token create` (config tokens are not stored).
# Only the SHA-256 digest of each secret is kept. One row per secret: a rotation adds
# a row for the same name and marks the previous one superseded, with an expiry at the
# end of the grace period. `current_name` is the name while the row is the name's
# current secret, NULL once superseded or revoked, so a name has one current secret.
scim_tokens = Table(
    "scim_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, index=True),
    Column("current_name", String(255), nullable=True, unique=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("superseded_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# The audit chain's head: how many records the trail holds and the hash of the last,
# updated in the transaction of every append. The chain itself proves each record
# follows the one before; only the head can tell that records were cut off its end.
audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("records", Integer, nullable=False),
    Column("last_seq", Integer, nullable=True),
    Column("last_hash", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
