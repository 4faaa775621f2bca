"""The CI registry: per account, every configuration item, its state, attributes and relations."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.configuration import RETIRED, ConfigurationItem
from domain.configuration import dependents as dependents_of
from domain.events import aggregate_name, event_kind
from projections.db import Transaction
from projections.tracking import Projection

log = logging.getLogger(__name__)

NAME = "ci_registry"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS view_cis (
        ci_id TEXT NOT NULL UNIQUE,
        account TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        state_reason TEXT,
        attributes TEXT NOT NULL,
        registered_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        version INTEGER NOT NULL,
        position BIGINT NOT NULL,
        PRIMARY KEY (account, name)
    )""",
    """CREATE TABLE IF NOT EXISTS view_ci_relations (
        account TEXT NOT NULL,
        ci TEXT NOT NULL,
        relation TEXT NOT NULL,
        target TEXT NOT NULL,
        PRIMARY KEY (account, ci, relation, target)
    )""",
    "CREATE INDEX IF NOT EXISTS view_ci_relations_target ON view_ci_relations (account, target)",
)

_COLUMNS = (
    "ci_id", "account", "name", "kind", "state", "state_reason", "attributes", "registered_at",
    "updated_at", "version", "position",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO view_cis ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
    " ON CONFLICT (account, name) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c not in ("account", "name"))
    + " WHERE view_cis.version < excluded.version"
)

_CONFIGURATION_ITEM = aggregate_name(ConfigurationItem)
_REGISTERED = event_kind(ConfigurationItem.Registered)
_RELATED = event_kind(ConfigurationItem.Related)
_UNRELATED = event_kind(ConfigurationItem.Unrelated)
_STATE_CHANGED = event_kind(ConfigurationItem.StateChanged)
_ATTRIBUTES_UPDATED = event_kind(ConfigurationItem.AttributesUpdated)
_RETIRED = event_kind(ConfigurationItem.Retired)

Row = dict[str, Any]
Rows = list[Row]
Relations = dict[str, list[tuple[str, str]]]
Names = list[str]


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _public(row: Row) -> Row:
    """A registry row as the API shows it."""
    return {
        "ci_id": row["ci_id"],
        "account": row["account"],
        "ci_name": row["name"],
        "kind": row["kind"],
        "state": row["state"],
        "state_reason": row["state_reason"],
        "attributes": json.loads(row["attributes"]),
        "registered_at": row["registered_at"],
        "updated_at": row["updated_at"],
        "version": row["version"],
    }


class CiRegistryProjection(Projection):
    """Keeps the CI registry from ConfigurationItem events; owns its tables and their queries."""

    name = NAME
    reads = (_CONFIGURATION_ITEM,)

    def schema(self) -> Sequence[str]:
        return SCHEMA

    def apply_events(self, tx: Transaction, envelopes: list[dict[str, Any]]) -> int:
        return sum(1 for e in envelopes if e["aggregate_type"] == _CONFIGURATION_ITEM and self._apply_one(tx, e))

    def _apply_one(self, tx: Transaction, e: dict[str, Any]) -> bool:
        ci_id = str(e["aggregate_id"])
        row = tx.execute(f"SELECT {', '.join(_COLUMNS)} FROM view_cis WHERE ci_id = ?", (ci_id,)).one()
        have = row["version"] if row else 0
        version = e["aggregate_version"]
        if version <= have:
            return False
        if version != have + 1:
            # Cannot happen while partitions are read in order; never guess, log loudly.
            log.error("CI %s: version %s follows %s; event not applied", ci_id, version, have)
            return False
        p = e["payload"]
        kind = e["event_type"].split(".")[-1]
        at = _iso(e["occurred_at"])
        if kind == _REGISTERED:
            row = {c: None for c in _COLUMNS}
            row.update(
                ci_id=ci_id, account=p["account"], name=p["ci_name"], kind=p["kind"], state="operational",
                attributes=json.dumps(p.get("attributes") or {}, sort_keys=True), registered_at=at,
            )  # fmt: skip
        if row is None:
            log.error("CI %s: %s before its registration; event not applied", ci_id, kind)
            return False
        row = dict(row)
        if kind == _RELATED:
            tx.execute(
                "INSERT INTO view_ci_relations (account, ci, relation, target) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (row["account"], row["name"], p["relation"], p["target_ci"]),
            )
        elif kind == _UNRELATED:
            tx.execute(
                "DELETE FROM view_ci_relations WHERE account = ? AND ci = ? AND relation = ? AND target = ?",
                (row["account"], row["name"], p["relation"], p["target_ci"]),
            )
        elif kind == _STATE_CHANGED:
            row["state"], row["state_reason"] = p["state"], p["reason"]
        elif kind == _ATTRIBUTES_UPDATED:
            row["attributes"] = json.dumps({**json.loads(row["attributes"]), **p["attributes"]}, sort_keys=True)
        elif kind == _RETIRED:
            row["state"], row["state_reason"] = RETIRED, p["reason"]
        row["updated_at"] = at
        row["version"] = version
        row["position"] = e["position"]
        tx.execute(_UPSERT, [row[c] for c in _COLUMNS])
        return True

    # -- reading ------------------------------------------------------------------

    def list(self, account: str, kind: str | None = None, state: str | None = None) -> Rows:
        """The account's CIs by name, optionally of one kind or in one state."""
        sql = "SELECT * FROM view_cis WHERE account = ?"
        params: list[Any] = [account]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        if state is not None:
            sql += " AND state = ?"
            params.append(state)
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(sql + " ORDER BY name", params).all()
        return [_public(r) for r in rows]

    def get(self, account: str, ci: str) -> Row | None:
        """One CI with its own relations and the CIs that hold a relation to it."""
        with self.db.transaction(write=False) as tx:
            row = tx.execute("SELECT * FROM view_cis WHERE account = ? AND name = ?", (account, ci)).one()
            if row is None:
                return None
            own = tx.execute(
                "SELECT relation, target FROM view_ci_relations WHERE account = ? AND ci = ? ORDER BY relation, target",
                (account, ci),
            ).all()
            held = tx.execute(
                "SELECT ci, relation FROM view_ci_relations WHERE account = ? AND target = ? ORDER BY ci, relation",
                (account, ci),
            ).all()
        found = _public(row)
        found["relations"] = [{"relation": r["relation"], "target_ci": r["target"]} for r in own]
        found["related_from"] = [{"ci": r["ci"], "relation": r["relation"]} for r in held]
        return found

    def relations(self, account: str) -> Relations:
        """Each CI's own relations as (relation, target) pairs, the shape `dependents` reads.

        A retired CI holds no relation any more: nothing spreads through it.
        """
        with self.db.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT r.ci, r.relation, r.target FROM view_ci_relations r"
                " JOIN view_cis c ON c.account = r.account AND c.name = r.ci"
                " WHERE r.account = ? AND c.state <> ? ORDER BY r.ci, r.relation, r.target",
                (account, RETIRED),
            ).all()
        relations: Relations = {}
        for r in rows:
            relations.setdefault(r["ci"], []).append((r["relation"], r["target"]))
        return relations

    def dependents(self, account: str, ci: str) -> Names:
        """Every CI that depends on, or is located at, `ci`, directly or not, by name."""
        return sorted(dependents_of(self.relations(account), ci))
