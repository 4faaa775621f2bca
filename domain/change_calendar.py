"""The ChangeCalendar aggregate: one per account, the consistency boundary for scheduling changes.

It holds the account's freeze windows, the weekly maintenance windows agreed for each CI, and
the window booked by every scheduled change, so that two changes on one CI can never be booked
over each other: scheduling saves the change and its booking together, and a concurrent booking
of the same calendar makes one of the two saves fail and try again on fresh state.

Maintenance windows are weekly and recurring, in local wall-clock time (Europe/Paris unless the
CI says otherwise), e.g. (6, "02:00", "06:00") for Sunday 02:00–06:00; a window whose end is not
after its start runs past midnight into the next day, e.g. (5, "22:00", "04:00"). Daylight saving
is followed; public holidays are ordinary days. A CI without maintenance windows does not
constrain when its changes may run.

The calendar does not require its instants to grow: it is shared by all the account's changes,
whose commands may legitimately be recorded out of order (a completion back-dated to when it
happened after another change was scheduled).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.calendar import WEEKDAYS, BusinessCalendar, CalendarSpec
from domain.change import (
    ChangeConflict,
    FreezeWindow,
    ScheduleConflict,
    ScheduledWindow,
    _window,
    find_conflicts,
    within_maintenance_windows,
)
from domain.errors import IllegalTransition, InvalidCommand, NotFound
from domain.rules import TextsChecked, aware, check_actor_and_instant, check_name, check_uuid, required, within_reach

DEFAULT_TIMEZONE = "Europe/Paris"

_CALENDAR_NS = uuid5(NAMESPACE_URL, "urn:itil-engine:change-calendar")
_HHMM = re.compile(r"([01]\d|2[0-4]):([0-5]\d)")

WeeklyWindow = tuple[int, str, str]
"""(weekday 0 = Monday … 6 = Sunday, "HH:MM" start, "HH:MM" end) in the CI's local time."""


def calendar_id(account: str) -> UUID:
    """Each account has one change calendar."""
    return uuid5(_CALENDAR_NS, account.strip())


# -- validation -----------------------------------------------------------------------------------


def _period(what: str, start: object, end: object) -> tuple[datetime, datetime]:
    start = aware(start, f"the start of {what}")
    end = aware(end, f"the end of {what}")
    if not end > start:
        raise InvalidCommand(f"{what} must end after it starts, not {start.isoformat()}–{end.isoformat()}")
    return start, end


def _minutes(text: object, what: str) -> int:
    match = _HHMM.fullmatch(text) if isinstance(text, str) else None
    if match is None or (match[1] == "24" and match[2] != "00"):
        raise InvalidCommand(f"{what} must be a time of day written HH:MM, from 00:00 to 24:00, not {text!r}")
    return int(match[1]) * 60 + int(match[2])


def _weekly_windows(ci: str, windows: object) -> tuple[WeeklyWindow, ...]:
    if isinstance(windows, str | bytes) or not isinstance(windows, Iterable):
        raise InvalidCommand(
            f"the maintenance windows of {ci} must be a list of (weekday, start, end), not {windows!r}"
        )
    checked: list[WeeklyWindow] = []
    for window in windows:
        if isinstance(window, str | bytes) or not isinstance(window, Sequence) or len(window) != 3:
            raise InvalidCommand(f"each maintenance window must be (weekday, start, end), not {window!r}")
        weekday, start, end = window
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise InvalidCommand(
                f"the weekday of a maintenance window must be 0 (Monday) to 6 (Sunday), not {weekday!r}"
            )
        what = f"the {WEEKDAYS[weekday]} maintenance window of {ci}"
        if _minutes(start, f"the start of {what}") == _minutes(end, f"the end of {what}") or start == "24:00":
            raise InvalidCommand(f"{what} cannot start at {start} and end at {end}: use 00:00–24:00 for a whole day")
        entry = (weekday, start, end)
        if entry in checked:
            raise InvalidCommand(f"{what} {start}–{end} is listed twice")
        checked.append(entry)
    return tuple(sorted(checked))


def _zone_name(timezone: object) -> str:
    name = required("the time zone of maintenance windows", timezone)
    BusinessCalendar(CalendarSpec(timezone=name, hours=((0, "00:00", "24:00"),), holidays_country=None))
    return name


# -- plain values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaintenanceWindows:
    """The weekly windows in which changes to one CI are agreed to run."""

    ci: str
    timezone: str
    windows: tuple[WeeklyWindow, ...]

    def intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The concrete maintenance windows within [start, end), as (start, end) instants."""
        if not self.windows:
            return []
        hours: list[WeeklyWindow] = []
        for weekday, first, last in self.windows:
            if _minutes(last, "end") > _minutes(first, "start"):
                hours.append((weekday, first, last))
            else:  # runs past midnight into the next day
                hours.append((weekday, first, "24:00"))
                if last != "00:00":
                    hours.append(((weekday + 1) % 7, "00:00", last))
        calendar = BusinessCalendar(CalendarSpec(timezone=self.timezone, hours=tuple(hours), holidays_country=None))
        return list(calendar.covered_intervals(start, end))

    def cover(self, start: datetime, end: datetime) -> bool:
        """Whether these windows cover the whole of [start, end); no windows constrain nothing."""
        if not self.windows:
            return True
        return within_maintenance_windows(start, end, self.intervals(start, end))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ci": self.ci,
            "timezone": self.timezone,
            "windows": [{"weekday": d, "day": WEEKDAYS[d], "start": s, "end": e} for d, s, e in self.windows],
        }


@dataclass(frozen=True)
class Freeze:
    """A freeze window as the calendar holds it: a FreezeWindow and why it was declared."""

    name: str
    start: datetime
    end: datetime
    reason: str

    @property
    def window(self) -> FreezeWindow:
        return FreezeWindow(name=self.name, start=self.start, end=self.end)


# -- the aggregate --------------------------------------------------------------------------------


class ChangeCalendar(TextsChecked, Aggregate):
    """An account's change calendar: freeze windows, maintenance windows per CI, booked change windows."""

    class Event(Aggregate.Event):
        actor: str
        at: datetime

    class Opened(Event, Aggregate.Created):
        account: str

    class FreezeAdded(Event):
        name: str
        start: datetime
        end: datetime
        reason: str

    class FreezeRemoved(Event):
        name: str

    class MaintenanceWindowsSet(Event):
        ci: str
        timezone: str
        windows: tuple[WeeklyWindow, ...]

    class ChangeBooked(Event):
        change_id: UUID
        cis: tuple[str, ...]
        start: datetime
        end: datetime

    class BookingReleased(Event):
        change_id: UUID
        reason: str

    @event(Opened)
    def __init__(self, *, account: str, actor: str, at: datetime) -> None:
        self.account = account
        self.opened_at = at
        self._freezes: dict[str, Freeze] = {}
        self._maintenance: dict[str, MaintenanceWindows] = {}
        self._bookings: dict[UUID, ScheduledWindow] = {}

    @classmethod
    def open(cls, *, account: str, actor: str, at: datetime) -> ChangeCalendar:
        """Open the account's change calendar, empty."""
        account = check_name("account", account)
        return cls._create(
            cls.Opened, id=calendar_id(account), account=account, actor=required("actor", actor), at=aware(at)
        )

    # -- reading --------------------------------------------------------------------

    @property
    def freezes(self) -> tuple[Freeze, ...]:
        """The freeze windows, earliest first."""
        return tuple(sorted(self._freezes.values(), key=lambda f: (f.start, f.end, f.name)))

    @property
    def bookings(self) -> tuple[ScheduledWindow, ...]:
        """The windows booked by scheduled changes, earliest first."""
        return tuple(sorted(self._bookings.values(), key=lambda b: (b.start, b.end, str(b.change_id))))

    def booking(self, change_id: UUID) -> ScheduledWindow | None:
        return self._bookings.get(change_id)

    def maintenance_windows(self, ci: str) -> MaintenanceWindows | None:
        return self._maintenance.get(ci)

    def conflicts(self, change_id: UUID, cis: Iterable[str], start: datetime, end: datetime) -> list[ScheduleConflict]:
        """What a change on `cis` from `start` to `end` would overlap: other bookings, then freezes."""
        return find_conflicts(change_id, cis, start, end, self.bookings, (freeze.window for freeze in self.freezes))

    def outside_maintenance_windows(self, cis: Iterable[str], start: datetime, end: datetime) -> tuple[str, ...]:
        """The CIs among `cis` whose maintenance windows do not cover the whole of [start, end).

        An empty window is covered by anything (refusing it is the change's business).
        """
        start, end = aware(start, "the start of the window"), aware(end, "the end of the window")
        if not end > start:
            return ()
        return tuple(
            ci for ci in cis if (windows := self._maintenance.get(ci)) is not None and not windows.cover(start, end)
        )

    def within_maintenance_windows(self, cis: Iterable[str], start: datetime, end: datetime) -> bool:
        """Whether [start, end) lies inside the maintenance windows of every CI that has some."""
        return not self.outside_maintenance_windows(cis, start, end)

    def bookings_during(self, start: datetime, end: datetime) -> tuple[ScheduledWindow, ...]:
        """The booked changes whose window overlaps [start, end)."""
        return tuple(b for b in self.bookings if b.start < end and start < b.end)

    # -- commands -------------------------------------------------------------------

    def add_freeze(
        self, *, name: str, start: datetime, end: datetime, actor: str, at: datetime, reason: str = ""
    ) -> None:
        """Declare (or redefine) a freeze window: no change may be scheduled over it.

        Changes already booked over it keep their booking (see `bookings_during`) and must be
        re-planned by hand. Declaring the same freeze again changes nothing.
        """
        check_actor_and_instant(actor, at)
        name = required("the name of a freeze window", name)
        start, end = _period(f"freeze window {name}", start, end)
        within_reach(f"the end of freeze window {name}", end, at)
        reason = reason.strip() if isinstance(reason, str) else ""
        if self._freezes.get(name) == Freeze(name=name, start=start, end=end, reason=reason):
            return
        self._freeze_added(name=name, start=start, end=end, reason=reason, actor=actor, at=at)

    def remove_freeze(self, *, name: str, actor: str, at: datetime) -> None:
        """Lift a freeze window."""
        check_actor_and_instant(actor, at)
        name = required("the name of a freeze window", name)
        if name not in self._freezes:
            known = ", ".join(sorted(self._freezes)) or "none"
            raise NotFound(f"there is no freeze window {name!r} in {self._name()} (freeze windows: {known})")
        self._freeze_removed(name=name, actor=actor, at=at)

    def set_maintenance_windows(
        self,
        *,
        ci: str,
        windows: Iterable[WeeklyWindow],
        actor: str,
        at: datetime,
        timezone: str = DEFAULT_TIMEZONE,
    ) -> None:
        """Replace the weekly maintenance windows of one CI; none at all lifts its constraint.

        Setting the same windows again changes nothing.
        """
        check_actor_and_instant(actor, at)
        ci = required("CI name", ci)
        checked = _weekly_windows(ci, windows)
        timezone = _zone_name(timezone)
        current = self._maintenance.get(ci)
        if current == MaintenanceWindows(ci=ci, timezone=timezone, windows=checked) or (
            current is None and not checked
        ):
            return
        self._maintenance_windows_set(ci=ci, timezone=timezone, windows=checked, actor=actor, at=at)

    def book(
        self, *, change_id: UUID, cis: Iterable[str], start: datetime, end: datetime, actor: str, at: datetime
    ) -> None:
        """Book a change's window on its CIs (replacing its earlier booking, when re-planned).

        Refused when it overlaps another booked change on a shared CI, or a freeze window.
        """
        check_actor_and_instant(actor, at)
        check_uuid("change id", change_id)
        if isinstance(cis, str | bytes):
            raise InvalidCommand(f"the CIs of a booking must be a list of names, not {cis!r}")
        names = tuple(required("each CI of a booking", ci) for ci in cis)
        if not names:
            raise InvalidCommand(f"cannot book change {change_id}: it names no CI")
        start, end = _period(f"the window of change {change_id}", start, end)
        conflicts = self.conflicts(change_id, names, start, end)
        if conflicts:
            raise ChangeConflict(
                f"cannot book change {change_id} {_window(start, end)} in {self._name()}: "
                + "; ".join(conflict.describe() for conflict in conflicts)
            )
        if self._bookings.get(change_id) == ScheduledWindow(change_id=change_id, cis=names, start=start, end=end):
            raise IllegalTransition(
                f"cannot book change {change_id} in {self._name()}: it is already booked {_window(start, end)}"
            )
        self._change_booked(change_id=change_id, cis=names, start=start, end=end, actor=actor, at=at)

    def release(self, *, change_id: UUID, reason: str, actor: str, at: datetime) -> None:
        """Free the window of a change that was completed, failed or cancelled."""
        check_actor_and_instant(actor, at)
        if change_id not in self._bookings:
            raise IllegalTransition(f"cannot release change {change_id} from {self._name()}: it has no booking")
        self._booking_released(change_id=change_id, reason=required("reason", reason), actor=actor, at=at)

    # -- rules ----------------------------------------------------------------------

    def _name(self) -> str:
        return f"the change calendar of account {self.account}"

    # -- mutators: only assign state -----------------------------------------------

    @event(FreezeAdded)
    def _freeze_added(self, name: str, start: datetime, end: datetime, reason: str, actor: str, at: datetime) -> None:
        self._freezes = {**self._freezes, name: Freeze(name=name, start=start, end=end, reason=reason)}

    @event(FreezeRemoved)
    def _freeze_removed(self, name: str, actor: str, at: datetime) -> None:
        self._freezes = {n: f for n, f in self._freezes.items() if n != name}

    @event(MaintenanceWindowsSet)
    def _maintenance_windows_set(
        self, ci: str, timezone: str, windows: tuple[WeeklyWindow, ...], actor: str, at: datetime
    ) -> None:
        stored = tuple((int(d), str(s), str(e)) for d, s, e in windows)  # read back from JSON as lists
        if stored:
            self._maintenance = {**self._maintenance, ci: MaintenanceWindows(ci=ci, timezone=timezone, windows=stored)}
        else:
            self._maintenance = {c: w for c, w in self._maintenance.items() if c != ci}

    @event(ChangeBooked)
    def _change_booked(
        self, change_id: UUID, cis: tuple[str, ...], start: datetime, end: datetime, actor: str, at: datetime
    ) -> None:
        booking = ScheduledWindow(change_id=change_id, cis=tuple(cis), start=start, end=end)
        self._bookings = {**self._bookings, change_id: booking}

    @event(BookingReleased)
    def _booking_released(self, change_id: UUID, reason: str, actor: str, at: datetime) -> None:
        self._bookings = {c: b for c, b in self._bookings.items() if c != change_id}

    def summary(self) -> dict[str, Any]:
        """The calendar as plain values."""
        return {
            "id": str(self.id),
            "version": self.version,
            "account": self.account,
            "freeze_windows": [
                {"name": f.name, "start": f.start, "end": f.end, "reason": f.reason} for f in self.freezes
            ],
            "maintenance_windows": [self._maintenance[ci].to_dict() for ci in sorted(self._maintenance)],
            "bookings": [
                {"change_id": str(b.change_id), "cis": list(b.cis), "start": b.start, "end": b.end}
                for b in self.bookings
            ],
        }
