"""Does a group of 5,000 members cost the same to list, find and PATCH as one of 50?

Fills two stores (the small one is the baseline of the same run), each with one group
of that many members and the same ten small groups beside it, then times through the
real HTTP app (no network, no Gogs: a GroupService without a reconciler and without
mapping rules):

* judged (large/small ratio at most `--max-ratio`), what IdPs send when they list,
  look up and change groups, all with `excludedAttributes=members`:
  `GET /Groups`, `GET /Groups/{id}`, `GET /Groups?filter=displayName eq "..."`,
  `GET /Groups?filter=members[value eq "<id>"]` and a PATCH adding one member;
  and the peak Python memory (tracemalloc) of those requests;
* informational: `GET /Groups/{id}` and the members filter *with* members, whose
  answers carry every member and so grow with the group by design.

    .venv/bin/python bench/groups_scale.py                 # SQLite, 50 vs 5,000
    .venv/bin/python bench/groups_scale.py --large 20000
    .venv/bin/python bench/groups_scale.py --database-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, insert, make_url, text
from starlette.applications import Starlette
from starlette.testclient import TestClient

from gogs_scim.api.app import create_app
from gogs_scim.api.auth import KnownToken, TokenVerifier, token_digest
from gogs_scim.api.endpoints import ApiSettings
from gogs_scim.scim.flatten import flatten
from gogs_scim.scim.patch import PATCH_OP_SCHEMA
from gogs_scim.scim.schema import GROUP_RESOURCE
from gogs_scim.service.groups import GroupService
from gogs_scim.service.users import UserService
from gogs_scim.store import groups as group_store
from gogs_scim.store.database import create_store_engine, migrate
from gogs_scim.store.groups import GroupRecord, Member
from gogs_scim.store.tables import users

TOKEN = "bench-token-0123456789"  # noqa: S105 (a local benchmark's throwaway token)
NEIGHBOURS = 10  # small groups beside the measured one, the same in both stores
NEIGHBOUR_SIZE = 5
EXCLUDED = {"excludedAttributes": "members"}


@dataclass(frozen=True)
class Store:
    group_id: str
    group_name: str
    members: list[str]
    spare: list[str]  # users in no group, added one per PATCH


def _insert_users(engine: Engine, count: int, now: datetime, batch: int = 2000) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with engine.begin() as conn:
        for start in range(0, count, batch):
            conn.execute(
                insert(users),
                [
                    {
                        "id": user_id,
                        "user_name": f"member{n:07d}@example.com",
                        "user_name_folded": f"member{n:07d}@example.com",
                        "display_name": f"Member {n}",
                        "active": True,
                        "document": {"userName": f"member{n:07d}@example.com"},
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                        "gogs_login": f"member{n:07d}",
                        "gogs_login_folded": f"member{n:07d}",
                        "gogs_adopted": False,
                        "sync_state": "synced",
                    }
                    for n, user_id in enumerate(ids[start : start + batch], start)
                ],
            )
    return ids


def _insert_group(engine: Engine, name: str, members: list[str], now: datetime) -> str:
    document = {"displayName": name, "externalId": f"ext-{name}"}
    record = GroupRecord(
        id=str(uuid.uuid4()),
        display_name=name,
        external_id=document["externalId"],
        document=document,
        version=1,
        created_at=now,
        updated_at=now,
        sync_state="synced",
    )
    with engine.begin() as conn:
        group_store.insert_group(conn, record, flatten(document, GROUP_RESOURCE))
        group_store.add_members(conn, record.id, [Member(user_id, None) for user_id in members])
    return record.id


def fill(engine: Engine, size: int, spare: int) -> Store:
    """`size` users in one group, `spare` users in none, and the neighbour groups."""
    now = datetime.now(UTC)
    ids = _insert_users(engine, size + spare, now)
    members, spares = ids[:size], ids[size:]
    for n in range(NEIGHBOURS):
        _insert_group(engine, f"Neighbour {n}", members[:NEIGHBOUR_SIZE], now)
    name = f"Engineering {size}"
    group_id = _insert_group(engine, name, members, now)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return Store(group_id, name, members, spares)


def _app(engine: Engine) -> Starlette:
    max_results = 1000
    return create_app(
        UserService(
            engine,
            None,
            login_from="local-part",
            accept_passwords=False,
            reserved_logins=frozenset(),
            max_results=max_results,
        ),
        TokenVerifier(lambda: [KnownToken("bench", token_digest(TOKEN))]),
        ApiSettings(public_url=None, max_body_bytes=1 << 20, max_results=max_results),
        groups=GroupService(engine, None, mappings=(), max_results=max_results),
    )


class Probes:
    """The timed requests against one store, through its own app and client."""

    def __init__(self, client: TestClient, store: Store) -> None:
        self._client = client
        self._store = store
        self._spare = iter(store.spare)
        self._rng = random.Random(7)
        gid = store.group_id
        self.judged: dict[str, Callable[[], None]] = {
            "GET /Groups (no members)": lambda: self._get("/Groups", **EXCLUDED),
            "GET /Groups/{id} (no members)": lambda: self._get(f"/Groups/{gid}", **EXCLUDED),
            "filter displayName eq (no members)": lambda: self._get(
                "/Groups", filter=f'displayName eq "{store.group_name}"', **EXCLUDED
            ),
            "filter members[value eq] (no members)": lambda: self._by_member(**EXCLUDED),
            "PATCH add one member (no members)": self._add_member,
        }
        self.informational: dict[str, Callable[[], None]] = {
            "GET /Groups/{id} with members": lambda: self._get(f"/Groups/{gid}"),
            "filter members[value eq] with members": self._by_member,
        }

    def _get(self, path: str, **params: str) -> None:
        response = self._client.get(path, params=params)
        assert response.status_code == 200, response.text

    def _by_member(self, **params: str) -> None:
        member = self._store.members[self._rng.randrange(len(self._store.members))]
        self._get("/Groups", filter=f'members[value eq "{member}"]', **params)

    def _add_member(self) -> None:
        body = {
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"value": next(self._spare)}]}
            ],
        }
        response = self._client.patch(f"/Groups/{self._store.group_id}", params=EXCLUDED, json=body)
        assert response.status_code == 200, response.text

    def peak_kib(self) -> float:
        """Peak Python memory of the judged requests (all excluding members)."""
        tracemalloc.start()
        for _ in range(20):
            for name, probe in self.judged.items():
                if not name.startswith("PATCH"):
                    probe()
        self.judged["PATCH add one member (no members)"]()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return peak / 1024


def _medians(
    small: dict[str, Callable[[], None]], large: dict[str, Callable[[], None]], rounds: int
) -> dict[str, tuple[float, float]]:
    """Median ms of each request on both stores, timed in turns so that the load of the
    machine weighs on both sizes alike."""
    medians = {}
    for name in small:
        samples: tuple[list[float], list[float]] = ([], [])
        for _ in range(rounds):
            for probe, into in ((small[name], samples[0]), (large[name], samples[1])):
                started = time.perf_counter()
                probe()
                into.append((time.perf_counter() - started) * 1000)
        medians[name] = (statistics.median(samples[0]), statistics.median(samples[1]))
    return medians


def open_store(database_url: str | None, workdir: Path, tag: str) -> Engine:
    if database_url:
        # One PostgreSQL database, one schema per size.
        engine = create_store_engine(database_url)
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS bench_{tag} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA bench_{tag}"))
        engine.dispose()
        url = make_url(database_url).update_query_dict({"options": f"-csearch_path=bench_{tag}"})
        engine = create_store_engine(url.render_as_string(hide_password=False))
    else:
        engine = create_store_engine(f"sqlite:///{workdir / f'{tag}.db'}")
    migrate(engine)
    return engine


def _fill(engine: Engine, size: int, rounds: int) -> Store:
    started = time.perf_counter()
    # One spare user per timed PATCH, and one for the memory run.
    store = fill(engine, size, spare=rounds + 1)
    print(f"  a group of {size:,} members: filled in {time.perf_counter() - started:.1f} s")
    return store


def _row(name: str, small: float, large: float, note: str = "") -> str:
    return f"{name:40} {small:10.2f} {large:10.2f}  {large / small:5.2f}{note}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--large", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument(
        "--database-url", help="PostgreSQL URL (schemas bench_small and bench_large are wiped)"
    )
    parser.add_argument("--max-ratio", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gogs-scim-bench-") as tmp:
        engines = [open_store(args.database_url, Path(tmp), tag) for tag in ("small", "large")]
        stores = [
            _fill(e, n, args.rounds) for e, n in zip(engines, (args.small, args.large), strict=True)
        ]
        clients = [
            TestClient(
                _app(engine),
                base_url="http://bench/scim/v2",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            for engine in engines
        ]
        with clients[0], clients[1]:
            small, large = (Probes(c, s) for c, s in zip(clients, stores, strict=True))
            for probes in (small, large):  # warm up connection pools and caches
                probes.judged["GET /Groups (no members)"]()
            judged = _medians(small.judged, large.judged, args.rounds)
            informational = _medians(
                small.informational, large.informational, max(args.rounds // 10, 5)
            )
            memory = (small.peak_kib(), large.peak_kib())
        for engine in engines:
            engine.dispose()
    print(f"\n{'median ms':40} {args.small:>10,} {args.large:>10,}  ratio")
    worst = 0.0
    for name, (small_ms, large_ms) in judged.items():
        worst = max(worst, large_ms / small_ms)
        print(_row(name, small_ms, large_ms))
    for name, (small_ms, large_ms) in informational.items():
        print(_row(name, small_ms, large_ms, "  (informational: lists every member)"))
    print(_row("peak Python memory, KiB (no members)", *memory))
    worst = max(worst, memory[1] / memory[0])
    verdict = "OK" if worst <= args.max_ratio else "TOO SLOW"
    print(f"\nworst judged ratio {worst:.2f} (limit {args.max_ratio}): {verdict}")
    return 0 if worst <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
