"""Supervision: each account's alarm rules (MonitoringPolicy) and each alarm's episodes (Alarm).

An alarm is what the monitoring servers call one dedup key: it is raised, repeated, updated and
cleared, again and again. Each raise after a clear starts an episode; an episode opens at most one
incident (at once, or when its flapping hold expires) and its clear restores or annotates it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import IllegalTransition, InvalidCommand, NotFound
from domain.priority import check_level
from domain.rules import TextsChecked, aware, check_actor_and_instant, check_name, check_uuid, one_of, required

SEVERITIES = ("critical", "major", "minor", "warning")
"""Alarm severities, worst first."""
RESTORE = "restore"
ANNOTATE = "annotate"
ON_CLEAR = (RESTORE, ANNOTATE)
MAX_HOLD_SECONDS = 24 * 3600
MAX_RULES = 500

HELD = "held"
OPEN = "open"
CLEARED = "cleared"

_POLICY_NS = uuid5(NAMESPACE_URL, "urn:itil-engine:monitoring-policy")
_ALARM_NS = uuid5(NAMESPACE_URL, "urn:itil-engine:alarm")


def check_severity(value: object) -> str:
    return one_of("severity", value, SEVERITIES)


def at_least(severity: str, minimum: str) -> bool:
    """Whether `severity` is `minimum` or worse."""
    return SEVERITIES.index(severity) <= SEVERITIES.index(minimum)


# -- rules ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmRule:
    """How alarms of some checks, from some severity up, become incidents on an account.

    `check` is an fnmatch pattern ("ping", "tpe-*", "*"); the rule applies to alarms of `min_severity`
    or worse. `hold_seconds` > 0 waits that long before opening the incident, so an alarm that
    flaps (cleared within the hold) opens nothing. `automation` names a corrective action the
    automation platform runs when the incident opens.
    """

    check: str = "*"
    min_severity: str = "warning"
    impact: int = 3
    urgency: int = 3
    on_clear: str = RESTORE
    hold_seconds: int = 0
    automation: str | None = None

    def __post_init__(self) -> None:
        required("a rule's check pattern", self.check)
        check_severity(self.min_severity)
        check_level("impact", self.impact)
        check_level("urgency", self.urgency)
        one_of("on_clear", self.on_clear, ON_CLEAR)
        if isinstance(self.hold_seconds, bool) or not isinstance(self.hold_seconds, int):
            raise InvalidCommand(f"hold_seconds must be a whole number of seconds, not {self.hold_seconds!r}")
        if not 0 <= self.hold_seconds <= MAX_HOLD_SECONDS:
            raise InvalidCommand(f"hold_seconds must be between 0 and {MAX_HOLD_SECONDS}, not {self.hold_seconds}")
        if self.automation is not None:
            required("a rule's automation action (or none)", self.automation)

    def matches(self, check: str, severity: str) -> bool:
        return fnmatchcase(check, self.check) and at_least(severity, self.min_severity)

    @property
    def hold(self) -> timedelta:
        return timedelta(seconds=self.hold_seconds)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> AlarmRule:
        """A rule from plain values (an event, a request body); unknown names are refused."""
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise InvalidCommand(f"unknown rule field(s): {', '.join(unknown)}")
        rule = cls(**values)
        return cls(**{**rule.as_dict(), "check": rule.check.strip(), "automation": _strip(rule.automation)})


def _strip(text: str | None) -> str | None:
    return text.strip() if isinstance(text, str) else None


DEFAULT_RULES: tuple[AlarmRule, ...] = (
    AlarmRule("*", "critical", impact=1, urgency=1),
    AlarmRule("*", "major", impact=1, urgency=2),
    AlarmRule("*", "minor", impact=2, urgency=2),
    AlarmRule("*", "warning", impact=3, urgency=3),
)
"""What an account without its own rule for an alarm gets: critical P1, major P2, minor P3, warning P4
(common matrix); restore on clear; no hold; no automation. A warning still opens an incident (P4): a
monitored check means someone wants to know; an account that does not adds a rule for it."""


def rule_for(rules: Iterable[AlarmRule], check: str, severity: str) -> AlarmRule:
    """The first of the account's rules that matches the check and severity, else the default one."""
    for rule in (*rules, *DEFAULT_RULES):
        if rule.matches(check, severity):
            return rule
    raise AssertionError("the default rules cover every severity")


def check_rules(rules: object) -> tuple[AlarmRule, ...]:
    if isinstance(rules, str | bytes) or not isinstance(rules, Sequence):
        raise InvalidCommand("rules must be a list of alarm rules")
    if len(rules) > MAX_RULES:
        raise InvalidCommand(f"at most {MAX_RULES} rules per account, not {len(rules)}")
    checked: list[AlarmRule] = []
    for rule in rules:
        if not isinstance(rule, AlarmRule):
            raise InvalidCommand(f"not an alarm rule: {rule!r}")
        checked.append(AlarmRule.of(rule.as_dict()))
    return tuple(checked)


# -- correlation ------------------------------------------------------------------------------------

WAIT = "wait"
UPSTREAM_CLEAR = (WAIT, RESTORE)
"""What a clear of the upstream CI's alarm does to an outage whose sites still alarm: `wait` notes it
on the parent and leaves the outage open until the last alarm behind it clears; `restore` restores
the parent (which restores its open children) and ends the outage."""
MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS = 10, 3600
MIN_THRESHOLD, MAX_THRESHOLD = 2, 10_000


@dataclass(frozen=True)
class Correlation:
    """How an account's alarms become one mass outage.

    When alarms open incidents on `threshold` CIs or more that depend (depends_on / located_at,
    directly or not) on one upstream CI within `window_seconds` of each other, they become one
    outage: a parent incident on the upstream CI with the others attached as its children.
    """

    window_seconds: int = 120
    threshold: int = 3
    upstream_clear: str = WAIT

    def __post_init__(self) -> None:
        for name, low, high in (
            ("window_seconds", MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS),
            ("threshold", MIN_THRESHOLD, MAX_THRESHOLD),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidCommand(f"correlation {name} must be a whole number, not {value!r}")
            if not low <= value <= high:
                raise InvalidCommand(f"correlation {name} must be between {low} and {high}, not {value}")
        one_of("correlation upstream_clear", self.upstream_clear, UPSTREAM_CLEAR)

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Correlation:
        """Correlation settings from plain values (an event, a request body); unknown names are refused."""
        unknown = sorted(set(values) - set(cls.__dataclass_fields__))
        if unknown:
            raise InvalidCommand(f"unknown correlation field(s): {', '.join(unknown)}")
        return cls(**values)


def policy_id(account: str) -> UUID:
    """Each account has one MonitoringPolicy, found from the account's name alone."""
    return uuid5(_POLICY_NS, account.strip())


class MonitoringPolicy(TextsChecked, Aggregate):
    """An account's alarm rules: which alarms open incidents of which priority, and what a clear does."""

    class Event(Aggregate.Event):
        actor: str
        at: datetime

    class Defined(Event, Aggregate.Created):
        account: str
        rules: list[dict[str, Any]]
        correlation: dict[str, Any] | None = None
        """None: the engine's default correlation (policies defined before correlation was settable)."""

    class RulesSet(Event):
        rules: list[dict[str, Any]]
        correlation: dict[str, Any] | None = None

    @event(Defined)
    def __init__(
        self, *, account: str, rules: list[dict[str, Any]], actor: str, at: datetime,
        correlation: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        self.account = account
        self.rules = tuple(AlarmRule.of(r) for r in rules)
        self.correlation = Correlation.of(correlation) if correlation is not None else None
        self.defined_at = at
        self.last_at = at

    @classmethod
    def define(
        cls, *, account: str, rules: Sequence[AlarmRule], actor: str, at: datetime,
        correlation: Correlation | None = None,
    ) -> MonitoringPolicy:  # fmt: skip
        """Give an account its alarm rules, tried in order before the default ones, and how its alarms
        correlate into mass outages (None: the engine's default)."""
        account = check_name("account", account)
        return cls._create(
            cls.Defined, id=policy_id(account), account=account, rules=[r.as_dict() for r in check_rules(rules)],
            actor=required("actor", actor), at=aware(at), correlation=_correlation_values(correlation),
        )  # fmt: skip

    def set_rules(
        self, *, rules: Sequence[AlarmRule], actor: str, at: datetime, correlation: Correlation | None = None
    ) -> None:
        """Replace the account's rules (and its correlation, when given); setting what it already has
        changes nothing."""
        check_actor_and_instant(actor, at)
        checked = check_rules(rules)
        wanted = self.correlation if correlation is None else _checked_correlation(correlation)
        if checked != self.rules or wanted != self.correlation:
            self._rules_set(rules=[r.as_dict() for r in checked], actor=actor, at=at,
                            correlation=_correlation_values(wanted))  # fmt: skip

    def rule_for(self, check: str, severity: str) -> AlarmRule:
        return rule_for(self.rules, check, severity)

    @event(RulesSet)
    def _rules_set(
        self, rules: list[dict[str, Any]], actor: str, at: datetime, correlation: dict[str, Any] | None = None
    ) -> None:
        self.last_at = at
        self.rules = tuple(AlarmRule.of(r) for r in rules)
        self.correlation = Correlation.of(correlation) if correlation is not None else None

    def summary(self) -> dict[str, Any]:
        return rules_summary(self.account, self.rules, version=self.version, correlation=self.correlation)


def _checked_correlation(correlation: object) -> Correlation:
    if not isinstance(correlation, Correlation):
        raise InvalidCommand(f"not correlation settings: {correlation!r}")
    return Correlation.of(correlation.as_dict())


def _correlation_values(correlation: Correlation | None) -> dict[str, Any] | None:
    return None if correlation is None else _checked_correlation(correlation).as_dict()


def rules_summary(
    account: str, rules: Sequence[AlarmRule], version: int = 0, correlation: Correlation | None = None
) -> dict[str, Any]:
    """An account's rules as plain values (an account that never set any has version 0)."""
    return {
        "account": account,
        "version": version,
        "rules": [r.as_dict() for r in rules],
        "default_rules": [r.as_dict() for r in DEFAULT_RULES],
        "correlation": (correlation or Correlation()).as_dict(),
        "correlation_is_default": correlation is None,
    }


# -- alarms -----------------------------------------------------------------------------------------

Outcome = Literal["raised", "held", "repeated", "cleared", "flap", "stale", "not_active"]
"""What a sighting or a clear did: a new episode (opening at once, or held), a repeat in the open
episode, a clear (of an episode with an incident, or of a held flap that opened nothing), a
message older than what the alarm already knows (a redelivery, or out of order: nothing changes),
or a clear of an alarm that is not active."""


@functools.lru_cache(maxsize=65536)
def alarm_id(account: str, dedup_key: str) -> UUID:
    """The id of the alarm the monitoring names `dedup_key` on `account` (remembered: a storm asks
    for the same few thousand ids again and again, and a uuid5 costs a SHA-1 and a UUID)."""
    return uuid5(_ALARM_NS, f"{account.strip()}/{dedup_key.strip()}")


def episode_incident_id(alarm: UUID, episode: int) -> UUID:
    """The incident one episode of an alarm opens: a redelivered alarm finds the one it opened."""
    return uuid5(alarm, f"episode/{episode}")


def automation_request_id(alarm: UUID, episode: int, action: str) -> UUID:
    """One request per automation action and episode."""
    return uuid5(alarm, f"episode/{episode}/automation/{action}")


class Alarm(TextsChecked, Aggregate):
    """One alarm of an account (its dedup key), episode after episode: raised, repeated, cleared."""

    class Event(Aggregate.Event):
        actor: str
        at: datetime

    class Tracked(Event, Aggregate.Created):
        account: str
        dedup_key: str

    class Raised(Event):
        episode: int
        ci: str
        check: str
        severity: str
        summary: str
        hold_until: datetime | None

    class Repeated(Event):
        episode: int
        severity: str
        summary: str

    class IncidentOpened(Event):
        episode: int
        incident_id: UUID

    class Cleared(Event):
        episode: int
        summary: str
        incident_id: UUID | None
        """None: cleared while held, so the episode opened nothing (a flap)."""

    class Annotated(Event):
        episode: int
        note: str

    class AutomationRequested(Event):
        episode: int
        request_id: UUID
        action: str
        incident_id: UUID

    class AutomationReported(Event):
        request_id: UUID
        succeeded: bool
        detail: str

    @event(Tracked)
    def __init__(self, *, account: str, dedup_key: str, actor: str, at: datetime) -> None:
        self.account = account
        self.dedup_key = dedup_key
        self.tracked_at = at
        self.episode = 0
        self.status: str | None = None
        self.ci: str | None = None
        self.check: str | None = None
        self.severity: str | None = None
        self.summary_text = ""
        self.raised_by: str | None = None
        self.started_at: datetime | None = None
        self.last_seen: datetime | None = None
        self.count = 0
        self.hold_until: datetime | None = None
        self.incident_id: UUID | None = None
        self.cleared_at: datetime | None = None
        self.annotations: list[dict[str, Any]] = []
        self.automations: dict[UUID, dict[str, Any]] = {}

    @classmethod
    def track(cls, *, account: str, dedup_key: str, actor: str, at: datetime) -> Alarm:
        """Start following an alarm the monitoring names `dedup_key` on an account."""
        account = check_name("account", account)
        dedup_key = required("dedup key", dedup_key)
        return cls._create(
            cls.Tracked, id=alarm_id(account, dedup_key), account=account, dedup_key=dedup_key,
            actor=required("actor", actor), at=aware(at),
        )  # fmt: skip

    # -- properties ---------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        """Raised and not cleared (held or open)."""
        return self.status in (HELD, OPEN)

    @property
    def is_held(self) -> bool:
        return self.status == HELD

    @property
    def episode_incident_id(self) -> UUID:
        """The incident the current episode opens when it opens one of its own."""
        return episode_incident_id(self.id, self.episode)

    # -- commands -----------------------------------------------------------------

    def raise_alarm(
        self, *, ci: str, check: str, severity: str, summary: str, hold_seconds: int, actor: str, at: datetime
    ) -> Outcome:
        """The monitoring sees the alarm (raised or updated): a new episode, or a repeat of the open one.

        A new episode is held `hold_seconds` before it may open its incident. A sighting no later than
        the last one of the open episode, or than the last clear, is a redelivery or arrived out of
        order: it changes nothing.
        """
        ci = required("CI", ci)
        check = required("check", check)
        severity = check_severity(severity)
        check_actor_and_instant(actor, at)
        if isinstance(hold_seconds, bool) or not isinstance(hold_seconds, int) or hold_seconds < 0:
            raise InvalidCommand(f"the hold must be a whole number of seconds, not {hold_seconds!r}")
        if self.is_active:
            assert self.last_seen is not None
            if at <= self.last_seen:
                return "stale"
            # trigger_event runs the same mutator (`_repeated`) as calling it, without the decorator's
            # argument matching: 7 instead of 15 µs, on the path every sighting of a storm takes
            self.trigger_event(
                self.Repeated, episode=self.episode, severity=severity, summary=summary or "", actor=actor, at=at
            )
            return "repeated"
        if self.cleared_at is not None and at <= self.cleared_at:
            return "stale"
        hold_until = at + timedelta(seconds=hold_seconds) if hold_seconds else None
        self.trigger_event(  # runs `_raised` (see the repeat above)
            self.Raised, episode=self.episode + 1, ci=ci, check=check, severity=severity, summary=summary or "",
            hold_until=hold_until, actor=actor, at=at,
        )  # fmt: skip
        return "held" if hold_until is not None else "raised"

    def open_incident(self, *, incident_id: UUID, actor: str, at: datetime) -> bool:
        """Record the incident the episode opened (its own, or the one of the outage it joined).

        Returns False when this incident was already recorded. A held episode opens its incident only
        once its hold has expired.
        """
        check_actor_and_instant(actor, at)
        check_uuid("the incident id", incident_id)
        if not self.is_active:
            raise IllegalTransition(f"cannot open an incident for {self._name()}: {self._inactive_text()}")
        if self.incident_id == incident_id:
            return False
        if self.incident_id is not None:
            raise IllegalTransition(
                f"cannot open incident {incident_id} for {self._name()}: episode {self.episode} already opened"
                f" incident {self.incident_id}"
            )
        if self.hold_until is not None and at < self.hold_until:
            raise IllegalTransition(
                f"cannot open an incident for {self._name()} at {at.isoformat()}: it is held until"
                f" {self.hold_until.isoformat()}, in case it clears by then"
            )
        self.trigger_event(  # runs `_incident_opened` (see the repeat in raise_alarm)
            self.IncidentOpened, episode=self.episode, incident_id=incident_id, actor=actor, at=at
        )
        return True

    def clear(self, *, summary: str, actor: str, at: datetime) -> Outcome:
        """The monitoring clears the alarm: the episode ends.

        Cleared while still held, the episode opened nothing ("flap"). A clear of an alarm that is not
        active, or older than its last sighting, changes nothing.
        """
        check_actor_and_instant(actor, at)
        if not self.is_active:
            return "not_active"
        assert self.last_seen is not None
        if at < self.last_seen:
            return "stale"
        flap = self.incident_id is None
        self._cleared(episode=self.episode, summary=summary or "", incident_id=self.incident_id, actor=actor, at=at)
        return "flap" if flap else "cleared"

    def annotate(self, *, note: str, actor: str, at: datetime) -> bool:
        """Note something about the current (or last) episode; the same note twice is noted once."""
        note = required("note", note)
        check_actor_and_instant(actor, at)
        if self.episode == 0:
            raise IllegalTransition(f"cannot annotate {self._name()}: it was never raised")
        if any(a["episode"] == self.episode and a["note"] == note for a in self.annotations):
            return False
        self._annotated(episode=self.episode, note=note, actor=actor, at=at)
        return True

    def request_automation(self, *, request_id: UUID, action: str, incident_id: UUID, actor: str, at: datetime) -> bool:
        """Ask the automation platform to correct the cause; returns False when already asked."""
        action = required("automation action", action)
        check_actor_and_instant(actor, at)
        if request_id in self.automations:
            return False
        if not self.is_active or self.incident_id is None:
            raise IllegalTransition(
                f"cannot request automation {action!r} for {self._name()}: it has no open incident to correct"
            )
        self._automation_requested(
            episode=self.episode, request_id=request_id, action=action, incident_id=incident_id, actor=actor, at=at
        )
        return True

    def record_automation_result(
        self, *, request_id: UUID, succeeded: bool, detail: str, actor: str, at: datetime
    ) -> bool:
        """Record how a requested automation went; returns False when its result is already recorded."""
        check_actor_and_instant(actor, at)
        request = self.automations.get(request_id)
        if request is None:
            raise NotFound(f"{self._name()} never requested automation {request_id}")
        if request["succeeded"] is not None:
            return False
        self._automation_reported(request_id=request_id, succeeded=bool(succeeded), detail=detail or "",
                                  actor=actor, at=at)  # fmt: skip
        return True

    # -- rules --------------------------------------------------------------------

    def _name(self) -> str:
        return f"alarm {self.dedup_key} of {self.account}"

    def _inactive_text(self) -> str:
        if self.cleared_at is None:
            return "it was never raised"
        return f"it was cleared at {self.cleared_at.isoformat()}"

    # -- mutators: only assign state ---------------------------------------------

    @event(Raised)
    def _raised(
        self, episode: int, ci: str, check: str, severity: str, summary: str, hold_until: datetime | None,
        actor: str, at: datetime,
    ) -> None:  # fmt: skip
        self.episode = episode
        self.raised_by = actor
        self.status = HELD if hold_until is not None else OPEN
        self.ci = ci
        self.check = check
        self.severity = severity
        self.summary_text = summary
        self.started_at = at
        self.last_seen = at
        self.count = 1
        self.hold_until = hold_until
        self.incident_id = None
        self.cleared_at = None

    @event(Repeated)
    def _repeated(self, episode: int, severity: str, summary: str, actor: str, at: datetime) -> None:
        self.count += 1
        self.last_seen = at
        self.severity = severity
        if summary:
            self.summary_text = summary

    @event(IncidentOpened)
    def _incident_opened(self, episode: int, incident_id: UUID, actor: str, at: datetime) -> None:
        self.status = OPEN
        self.incident_id = incident_id

    @event(Cleared)
    def _cleared(self, episode: int, summary: str, incident_id: UUID | None, actor: str, at: datetime) -> None:
        self.status = CLEARED
        self.cleared_at = at

    @event(Annotated)
    def _annotated(self, episode: int, note: str, actor: str, at: datetime) -> None:
        self.annotations.append({"episode": episode, "note": note, "actor": actor, "at": at})

    @event(AutomationRequested)
    def _automation_requested(
        self, episode: int, request_id: UUID, action: str, incident_id: UUID, actor: str, at: datetime
    ) -> None:
        self.automations[request_id] = {
            "episode": episode, "action": action, "incident_id": incident_id, "requested_at": at,
            "succeeded": None, "detail": None, "reported_at": None,
        }  # fmt: skip

    @event(AutomationReported)
    def _automation_reported(self, request_id: UUID, succeeded: bool, detail: str, actor: str, at: datetime) -> None:
        self.automations[request_id] = {
            **self.automations[request_id],
            "succeeded": succeeded,
            "detail": detail,
            "reported_at": at,
        }

    def summary(self) -> dict[str, Any]:
        """The alarm and its current (or last) episode as plain values."""
        return {
            "alarm_id": str(self.id),
            "version": self.version,
            "account": self.account,
            "dedup_key": self.dedup_key,
            "ci": self.ci,
            "check": self.check,
            "severity": self.severity,
            "summary": self.summary_text,
            "raised_by": self.raised_by,
            "episode": self.episode,
            "status": self.status,
            "started_at": self.started_at,
            "last_seen": self.last_seen,
            "count": self.count,
            "hold_until": self.hold_until,
            "incident_id": self.incident_id,
            "cleared_at": self.cleared_at,
            "annotations": [dict(a) for a in self.annotations],
            "automations": [{"request_id": k, **v} for k, v in self.automations.items()],
        }
