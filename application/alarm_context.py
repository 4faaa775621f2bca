"""What the alarm application reads often and caches: each account's CI graph and its alarm rules."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from application.app import ItilApplication
from domain.configuration import DEPENDENCY_RELATIONS
from domain.monitoring import (
    AlarmRule,
    Correlation,
    MonitoringPolicy,
    policy_id,
    rule_for,
)
from projections.configuration import CiRegistryProjection

log = logging.getLogger(__name__)

DEFAULT_RELATIONS_TTL = 30.0
"""Seconds a CI graph is kept before the registry is asked again whether it changed."""

# -- the CI graph, cached per account -----------------------------------------------------------------


class CiGraph:
    """An account's CI relations, read for correlation: what each CI depends on, and how many depend on it."""

    def __init__(self, relations: Mapping[str, Iterable[tuple[str, str]]]) -> None:
        self.upstream: dict[str, tuple[str, ...]] = {}
        self._held_by: dict[str, set[str]] = {}
        for source, pairs in relations.items():
            targets = tuple(sorted({target for relation, target in pairs if relation in DEPENDENCY_RELATIONS}))
            if targets:
                self.upstream[source] = targets
            for target in targets:
                self._held_by.setdefault(target, set()).add(source)
        self._ancestors: dict[str, tuple[str, ...]] = {}
        self._weights: dict[str, int] = {}

    def has_dependents(self, ci: str) -> bool:
        return ci in self._held_by

    def weight(self, ci: str) -> int:
        """How many CIs depend on `ci`, directly or not."""
        if ci not in self._weights:
            self._weights[ci] = len(_reachable(ci, self._held_by))
        return self._weights[ci]

    def ancestors(self, ci: str) -> tuple[str, ...]:
        """Every CI `ci` depends on or is located at, directly or not, the most upstream first."""
        if ci not in self._ancestors:
            self._ancestors[ci] = self.most_upstream_first(_reachable(ci, self.upstream))
        return self._ancestors[ci]

    def most_upstream_first(self, cis: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(cis, key=lambda c: (-self.weight(c), c)))


def _reachable(start: str, edges: Mapping[str, Iterable[str]]) -> set[str]:
    """Every CI reached from `start` along `edges`, directly or not (`start` itself left out)."""
    seen: set[str] = set()
    to_visit = [start]
    while to_visit:
        for nxt in edges.get(to_visit.pop(), ()):
            if nxt != start and nxt not in seen:
                seen.add(nxt)
                to_visit.append(nxt)
    return seen


class CiGraphs:
    """Each account's CI graph from the CI registry, read again when the registry has changed
    (its recorded positions moved: it applied CI events, or was rebuilt) or after `ttl` seconds.

    The registry is a view the worker keeps; the intake may run in another process, so a
    change is noticed from the database, not from a call."""

    def __init__(
        self,
        registry: CiRegistryProjection,
        ttl: float = DEFAULT_RELATIONS_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._graphs: dict[str, tuple[float, int, CiGraph]] = {}

    def registry_version(self) -> int:
        with self.registry.db.transaction(write=False) as tx:
            row = tx.execute(
                "SELECT COALESCE(SUM(position), 0) AS version FROM view_positions WHERE projection = ?",
                (self.registry.name,),
            ).one()
        return int(row["version"]) if row else 0

    def graph(self, account: str, version: int | None = None) -> CiGraph:
        """`version`: the registry's, when the caller has just read it (a batch reads it once)."""
        now = self.clock()
        if version is None:
            version = self.registry_version()
        with self._lock:
            known = self._graphs.get(account)
        if known is not None and now - known[0] < self.ttl and known[1] == version:
            return known[2]
        graph = CiGraph(self.registry.relations(account))
        with self._lock:
            self._graphs[account] = (now, version, graph)
        return graph

    def invalidate(self, account: str | None = None) -> None:
        with self._lock:
            if account is None:
                self._graphs.clear()
            else:
                self._graphs.pop(account, None)


# -- the account's rules, cached -----------------------------------------------------------------------


class PolicyCache:
    """Each account's alarm rules as last read, used only while the stored policy has not changed.

    The rules are set through the API, maybe in another process than the intake's, so a change
    is noticed from the store: the policy's stored version is read again before its rules are
    used (once for a whole batch of alarms: `confirm`), and a new version is read whole. A rule
    set applies to the very next alarm.
    """

    def __init__(self, app: ItilApplication) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._rules: dict[str, tuple[int, tuple[AlarmRule, ...], Correlation | None]] = {}
        """account -> (its policy's version, 0 for none; its rules; its correlation, None for the default)"""
        self._confirmed: set[str] = set()

    def confirm(self, accounts: Iterable[str]) -> None:
        """Check these accounts' policies in one query; their rules need no check until `release`."""
        ids = {policy_id(account): account for account in accounts}
        versions = self.app.stored_versions(list(ids))
        with self._lock:
            for pid, account in ids.items():
                known = self._rules.get(account)
                if known is not None and known[0] != versions.get(pid, 0):
                    del self._rules[account]
            self._confirmed = set(ids.values())

    def release(self) -> None:
        """The batch is over: from now on each use checks the stored version again."""
        with self._lock:
            self._confirmed = set()

    def rules(self, account: str) -> tuple[AlarmRule, ...]:
        return self._policy(account)[1]

    def correlation(self, account: str) -> Correlation | None:
        """The account's correlation settings; None when it never set any (the engine's default)."""
        return self._policy(account)[2]

    def _policy(self, account: str) -> tuple[int, tuple[AlarmRule, ...], Correlation | None]:
        with self._lock:
            known = self._rules.get(account)
            confirmed = account in self._confirmed
        if known is not None and (confirmed or self._stored_version(account) == known[0]):
            return known
        policy = self.app.find(policy_id(account), MonitoringPolicy)
        found = (policy.version, policy.rules, policy.correlation) if policy is not None else (0, (), None)
        with self._lock:
            self._rules[account] = found
        return found

    def rule(self, account: str, check: str, severity: str) -> AlarmRule:
        return rule_for(self.rules(account), check, severity)

    def _stored_version(self, account: str) -> int:
        pid = policy_id(account)
        return self.app.stored_versions([pid]).get(pid, 0)

    def invalidate(self, account: str | None = None) -> None:
        with self._lock:
            if account is None:
                self._rules.clear()
            else:
                self._rules.pop(account, None)
