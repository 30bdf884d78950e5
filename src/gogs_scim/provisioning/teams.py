"""The group -> team rules, pure: which Gogs teams a SCIM group feeds, and what to change.

A team may be fed by several rules (several groups); its desired members are the
union over all of them. The rules are the `[[mappings]]` of the configuration; this
module never reads Gogs or the store, so every decision here is unit-testable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gogs_scim.config import TeamMapping

# The converge queue's resource type for "make Gogs team org/team match".
TEAM_RESOURCE_TYPE = "Team"


@dataclass(frozen=True)
class TeamTarget:
    """One Gogs team the rules manage, with everything the rules say about it."""

    key: str
    org: str
    team: str
    permission: str
    # True when *every* rule feeding the team is exclusive: one non-exclusive rule
    # says people may be added by hand, and removing them would contradict it.
    exclusive: bool
    create_org: bool
    rules: tuple[TeamMapping, ...]


def team_key(org: str, team: str) -> str:
    """A short stable job key for a team (converge_jobs.resource_id is 36 characters).

    Gogs matches org and team names case-insensitively, so the key does too.
    """
    digest = hashlib.sha256(f"{org.lower()}/{team.lower()}".encode()).hexdigest()
    return f"team-{digest[:31]}"


def team_targets(mappings: Sequence[TeamMapping]) -> dict[str, TeamTarget]:
    """Every managed team, by key; rules naming the same team are merged."""
    grouped: dict[str, list[TeamMapping]] = {}
    for rule in mappings:
        grouped.setdefault(team_key(rule.org, rule.team), []).append(rule)
    targets: dict[str, TeamTarget] = {}
    for key, rules in grouped.items():
        first = rules[0]
        targets[key] = TeamTarget(
            key=key,
            org=first.org,
            team=first.team,
            # Settings refuses two rules giving one team different permissions.
            permission=first.permission,
            exclusive=all(rule.exclusive for rule in rules),
            create_org=any(rule.create_org for rule in rules),
            rules=tuple(rules),
        )
    return targets


def rule_matches(rule: TeamMapping, display_name: str, external_id: str | None) -> bool:
    """Whether `rule` selects a group: displayName case-insensitively (as SCIM
    compares it), externalId exactly (it is caseExact)."""
    if rule.match == "externalId":
        return external_id is not None and external_id == rule.group
    return display_name.lower() == rule.group.lower()


def teams_of_group(
    mappings: Sequence[TeamMapping], display_name: str, external_id: str | None
) -> set[str]:
    """The keys of the teams a group with these names feeds."""
    return {
        team_key(rule.org, rule.team)
        for rule in mappings
        if rule_matches(rule, display_name, external_id)
    }


@dataclass(frozen=True)
class MembershipPlan:
    add: tuple[str, ...]
    remove: tuple[str, ...]


def plan_membership(
    *,
    desired: Iterable[str],
    current: Iterable[str],
    granted: Iterable[str],
    exclusive: bool,
    protected: Iterable[str],
    is_owners: bool,
) -> MembershipPlan:
    """What to add to and remove from a team, logins compared case-insensitively.

    * `desired`: active members of the groups feeding the team;
    * `current`: the team's members in Gogs now;
    * `granted`: who the bridge itself added earlier (team_grants);
    * `protected`: accounts never removed (the bridge's own admin).

    An exclusive team loses everyone not desired; a non-exclusive one only loses the
    members the bridge granted and no group grants any more. The last member of an
    Owners team is never removed: Gogs refuses it (and an org needs an owner).
    """
    want = {login.lower(): login for login in desired}
    have = {login.lower(): login for login in current}
    ours = {login.lower() for login in granted}
    keep = {login.lower() for login in protected}
    add = sorted(want[folded] for folded in want.keys() - have.keys())
    unwanted = have.keys() - want.keys() - keep
    if not exclusive:
        unwanted &= ours
    remove = sorted(have[folded] for folded in unwanted)
    if is_owners and remove and len(have) - len(remove) + len(add) == 0:
        # Keep one (the first by name, so the choice is stable) until someone is added.
        remove = remove[1:]
    return MembershipPlan(add=tuple(add), remove=tuple(remove))
