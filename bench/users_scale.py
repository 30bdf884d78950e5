"""Does finding a user cost the same with 1,000 and 100,000 users in the store?

Fills two stores (the small one is the baseline of the same run), then times through
the real HTTP app (no network): `GET /Users?filter=userName eq "..."`,
`GET /Users?filter=externalId eq "..."`, `GET /Users/{id}` and a filter on a
non-column attribute (`emails.value`), and measures the peak Python memory of those
requests. Prints the figures and the large/small ratios; exits 1 when a ratio is over
`--max-ratio`.

    .venv/bin/python bench/users_scale.py                 # SQLite, 1,000 vs 100,000
    .venv/bin/python bench/users_scale.py --large 20000   # quicker
    .venv/bin/python bench/users_scale.py --database-url postgresql+psycopg://...
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

from sqlalchemy import Engine, insert, text
from starlette.testclient import TestClient

from gogs_scim.api.app import create_app
from gogs_scim.api.auth import KnownToken, TokenVerifier, token_digest
from gogs_scim.api.endpoints import ApiSettings
from gogs_scim.scim.flatten import flatten
from gogs_scim.scim.schema import USER_RESOURCE, USER_SCHEMA
from gogs_scim.service.users import UserService
from gogs_scim.store.database import create_store_engine, migrate
from gogs_scim.store.tables import attribute_values, users

UNJUDGED = {"list, first 100"}
TOKEN = "bench-token-0123456789"  # noqa: S105 (a local benchmark's throwaway token)


@dataclass(frozen=True)
class Figures:
    size: int
    ms: dict[str, float]
    peak_kib: float


def _document(n: int) -> dict[str, object]:
    return {
        "schemas": [USER_SCHEMA],
        "userName": f"user{n:07d}@example.com",
        "externalId": f"ext-{n:07d}",
        "displayName": f"User {n}",
        "name": {"givenName": f"Given{n}", "familyName": f"Family{n % 997}"},
        "emails": [
            {"value": f"user{n:07d}@example.com", "type": "work", "primary": True},
            {"value": f"u{n}@home.example", "type": "home"},
        ],
        "active": True,
    }


def fill(engine: Engine, size: int, batch: int = 2000) -> list[str]:
    ids: list[str] = []
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for start in range(0, size, batch):
            user_rows, value_rows = [], []
            for n in range(start, min(start + batch, size)):
                user_id = str(uuid.uuid4())
                ids.append(user_id)
                document = _document(n)
                user_rows.append(
                    {
                        "id": user_id,
                        "user_name": document["userName"],
                        "user_name_folded": str(document["userName"]).lower(),
                        "external_id": document["externalId"],
                        "display_name": document["displayName"],
                        "active": True,
                        "document": document,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                        "gogs_login": f"user{n:07d}",
                        "gogs_login_folded": f"user{n:07d}",
                        "gogs_adopted": False,
                        "sync_state": "synced",
                    }
                )
                value_rows.extend(
                    {
                        "resource_type": "User",
                        "resource_id": user_id,
                        "path": v.path,
                        "item": v.item,
                        "value_exact": v.value_exact,
                        "value_folded": v.value_folded,
                        "value_number": v.value_number,
                    }
                    for v in flatten(document, USER_RESOURCE)
                )
            conn.execute(insert(users), user_rows)
            conn.execute(insert(attribute_values), value_rows)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    else:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    return ids


def _time(call: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(engine: Engine, ids: list[str], rounds: int) -> Figures:
    service = UserService(
        engine,
        None,
        login_from="local-part",
        accept_passwords=False,
        reserved_logins=frozenset(),
        max_results=1000,
    )
    app = create_app(
        service,
        TokenVerifier(lambda: [KnownToken("bench", token_digest(TOKEN))]),
        ApiSettings(public_url=None, max_body_bytes=1 << 20, max_results=1000),
    )
    rng = random.Random(7)
    size = len(ids)
    with TestClient(
        app, base_url="http://bench/scim/v2", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:

        def get(path: str, **params: str) -> None:
            response = client.get(path, params=params)
            assert response.status_code == 200, response.text

        def by_user_name() -> None:
            n = rng.randrange(size)
            get("/Users", filter=f'userName eq "USER{n:07d}@example.com"')

        def by_external_id() -> None:
            get("/Users", filter=f'externalId eq "ext-{rng.randrange(size):07d}"')

        def by_email() -> None:
            get(
                "/Users",
                filter=f'emails[type eq "home" and value eq "u{rng.randrange(size)}@home.example"]',
            )

        def by_id() -> None:
            get(f"/Users/{ids[rng.randrange(size)]}")

        def first_page() -> None:
            get("/Users", count="100")

        by_id()  # warm up connection pool and caches
        ms = {
            "filter userName eq": _time(by_user_name, rounds),
            "filter externalId eq": _time(by_external_id, rounds),
            "filter emails[...] (index table)": _time(by_email, rounds),
            "GET /Users/{id}": _time(by_id, rounds),
            "list, first 100": _time(first_page, max(rounds // 10, 5)),
        }
        tracemalloc.start()
        for _ in range(20):
            by_user_name()
            by_id()
            first_page()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return Figures(size=size, ms=ms, peak_kib=peak / 1024)


def run(database_url: str | None, size: int, rounds: int, workdir: Path, tag: str) -> Figures:
    url = database_url or f"sqlite:///{workdir / f'{tag}.db'}"
    engine = create_store_engine(url)
    if database_url:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate(engine)
    started = time.perf_counter()
    ids = fill(engine, size)
    print(f"  filled {size:,} users in {time.perf_counter() - started:.1f} s", flush=True)
    figures = measure(engine, ids, rounds)
    engine.dispose()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--database-url", help="PostgreSQL URL (its public schema is wiped)")
    parser.add_argument("--max-ratio", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gogs-scim-bench-") as tmp:
        print(f"baseline: {args.small:,} users", flush=True)
        small = run(args.database_url, args.small, args.rounds, Path(tmp), "small")
        print(f"large: {args.large:,} users", flush=True)
        large = run(args.database_url, args.large, args.rounds, Path(tmp), "large")
    print(f"\n{'median ms':34} {args.small:>10,} {args.large:>10,}  ratio")
    worst = 0.0
    for name, small_ms in small.ms.items():
        ratio = large.ms[name] / small_ms
        # An unfiltered page must count every user for an exact totalResults, so it
        # grows with the directory by design: shown, not judged.
        judged = name not in UNJUDGED
        if judged:
            worst = max(worst, ratio)
        note = "" if judged else "  (informational: exact count of all users)"
        print(f"{name:34} {small_ms:10.2f} {large.ms[name]:10.2f}  {ratio:5.2f}{note}")
    memory_ratio = large.peak_kib / small.peak_kib
    print(
        f"{'peak Python memory, KiB':34} {small.peak_kib:10.0f} {large.peak_kib:10.0f}  "
        f"{memory_ratio:5.2f}"
    )
    worst = max(worst, memory_ratio)
    verdict = "OK" if worst <= args.max_ratio else "TOO SLOW"
    print(f"\nworst ratio {worst:.2f} (limit {args.max_ratio}): {verdict}")
    return 0 if worst <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
