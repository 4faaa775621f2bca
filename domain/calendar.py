"""Business-time arithmetic for SLA clocks: covered hours, public holidays and daylight saving."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from domain.errors import InvalidCommand

MAX_DAYS = 3700
"""How far (in local days) add() and next_covered() look ahead before giving up."""

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_HHMM = re.compile(r"(\d{2}):(\d{2})")
_ONE_DAY = timedelta(days=1)
_ZERO = timedelta(0)

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class CalendarSpec:
    """How a contract's coverage is described; plain values so it can be stored in events."""

    timezone: str = "Europe/Paris"
    hours: tuple[tuple[int, str, str], ...] = ()
    holidays_country: str | None = "FR"
    holidays_subdivision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready values."""
        return {
            "timezone": self.timezone,
            "hours": [[weekday, start, end] for weekday, start, end in self.hours],
            "holidays_country": self.holidays_country,
            "holidays_subdivision": self.holidays_subdivision,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CalendarSpec:
        """Rebuild a spec from to_dict() output (missing keys take their defaults)."""
        if not isinstance(data, Mapping):
            raise InvalidCommand(f"a calendar must be described by a mapping, not {data!r}")
        unknown = set(data) - {"timezone", "hours", "holidays_country", "holidays_subdivision"}
        if unknown:
            raise InvalidCommand(f"unknown calendar field(s): {', '.join(sorted(map(str, unknown)))}")
        raw_hours = data.get("hours", ())
        if isinstance(raw_hours, str | bytes) or not isinstance(raw_hours, list | tuple):
            raise InvalidCommand(f"calendar hours must be a list of [weekday, start, end], not {raw_hours!r}")
        hours = []
        for entry in raw_hours:
            if isinstance(entry, str | bytes) or not isinstance(entry, list | tuple) or len(entry) != 3:
                raise InvalidCommand(f"each calendar hours entry must be [weekday, start, end], not {entry!r}")
            hours.append((entry[0], entry[1], entry[2]))
        return cls(
            timezone=data.get("timezone", "Europe/Paris"),
            hours=tuple(hours),
            holidays_country=data.get("holidays_country", "FR"),
            holidays_subdivision=data.get("holidays_subdivision"),
        )

    @property
    def is_24_7(self) -> bool:
        """True when every instant is covered (no hours listed), holidays included."""
        return not self.hours


def always(timezone: str = "Europe/Paris") -> CalendarSpec:
    """Round-the-clock coverage: every instant counts, public holidays too."""
    return CalendarSpec(timezone=timezone, hours=(), holidays_country=None)


def business_hours(
    start: str = "08:00",
    end: str = "18:00",
    days: str = "Mon-Fri",
    *,
    saturday_morning: str | None = None,
    timezone: str = "Europe/Paris",
    country: str | None = "FR",
    subdivision: str | None = None,
) -> CalendarSpec:
    """Coverage from start to end on the given days, plus Saturday from start to saturday_morning."""
    weekdays = _parse_days(days)
    hours = [(weekday, start, end) for weekday in weekdays]
    if saturday_morning is not None:
        if 5 in weekdays:
            raise InvalidCommand("saturday_morning cannot be given when Saturday is already a full working day")
        hours.append((5, start, saturday_morning))
    spec = CalendarSpec(
        timezone=timezone,
        hours=tuple(hours),
        holidays_country=country,
        holidays_subdivision=subdivision,
    )
    _weekly_minutes(spec.hours)
    return spec


class BusinessCalendar:
    """Covered time of a contract: measures and adds durations that count only covered instants."""

    def __init__(self, spec: CalendarSpec) -> None:
        if not isinstance(spec, CalendarSpec):
            raise InvalidCommand(f"a calendar needs a CalendarSpec, not {spec!r}")
        self.spec = spec
        self._zone = _zone(spec.timezone)
        self._week = _weekly_minutes(spec.hours)
        if not spec.is_24_7 and not any(self._week):
            raise InvalidCommand("the calendar covers no time at all")
        self._country = None if spec.is_24_7 else spec.holidays_country
        self._subdivision = spec.holidays_subdivision
        if self._country is not None:
            _check_holidays(self._country, self._subdivision)
        elif spec.holidays_subdivision is not None and not spec.is_24_7:
            raise InvalidCommand("a holiday subdivision needs a holiday country")

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.spec!r})"

    def is_covered(self, at: datetime) -> bool:
        """Whether the instant falls in covered time."""
        at = _utc(at)
        if self.spec.is_24_7:
            return True
        return any(start <= at < end for start, end in self._day_intervals(self._day_of(at)))

    def measure(self, start: datetime, end: datetime) -> timedelta:
        """Covered time in [start, end); zero when end is not after start."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            return _ZERO
        if self.spec.is_24_7:
            return end - start
        total = _ZERO
        for piece_start, piece_end in self._covered_from(start, until=end):
            if piece_start >= end:
                break
            total += min(piece_end, end) - piece_start
        return total

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant at which `duration` of covered time has elapsed since start."""
        start = _utc(start)
        if not isinstance(duration, timedelta):
            raise InvalidCommand(f"the duration must be a timedelta, not {duration!r}")
        if duration < _ZERO:
            raise InvalidCommand(f"the duration cannot be negative, not {duration}")
        if duration == _ZERO:
            return start
        if self.spec.is_24_7:
            return start + duration
        remaining = duration
        for piece_start, piece_end in self._covered_from(start):
            if piece_end - piece_start >= remaining:
                return piece_start + remaining
            remaining -= piece_end - piece_start
        raise InvalidCommand(
            f"{duration} of covered time is not reached within {MAX_DAYS} days after {start.isoformat()}"
        )

    def next_covered(self, at: datetime) -> datetime:
        """The instant itself if covered, else the start of the next covered interval."""
        at = _utc(at)
        if self.spec.is_24_7:
            return at
        for piece_start, _ in self._covered_from(at):
            return piece_start
        raise InvalidCommand(f"no covered time within {MAX_DAYS} days after {at.isoformat()}")

    def covered_intervals(self, start: datetime, end: datetime) -> Iterator[Interval]:
        """The covered pieces of [start, end), in order, as UTC instants; touching pieces are joined."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            return
        if self.spec.is_24_7:
            yield start, end
            return
        pending: Interval | None = None
        for piece_start, piece_end in self._covered_from(start, until=end):
            if piece_start >= end:
                break
            piece = (piece_start, min(piece_end, end))
            if pending is not None and piece[0] <= pending[1]:
                pending = (pending[0], max(pending[1], piece[1]))
                continue
            if pending is not None:
                yield pending
            pending = piece
        if pending is not None:
            yield pending

    def _covered_from(self, start: datetime, until: datetime | None = None) -> Iterator[Interval]:
        """Covered intervals from start on, day by day; stops at until or after MAX_DAYS days."""
        day = first = self._day_of(start)
        while True:
            if until is None:
                if (day - first).days > MAX_DAYS:
                    return
            elif self._midnight(day) >= until:
                return
            for piece_start, piece_end in self._day_intervals(day):
                if piece_end > start:
                    yield max(piece_start, start), piece_end
            day += _ONE_DAY

    def _day_intervals(self, day: date) -> list[Interval]:
        """The covered instants of one local day, sorted, disjoint, within that day's own bounds."""
        minutes = self._week[day.weekday()]
        if not minutes or self._is_holiday(day):
            return []
        day_start, day_end = self._midnight(day), self._midnight(day + _ONE_DAY)
        pieces = sorted(
            (max(self._instant(day, begin), day_start), min(self._instant(day, finish), day_end))
            for begin, finish in minutes
        )
        merged: list[Interval] = []
        for piece_start, piece_end in pieces:
            if piece_start >= piece_end:
                continue  # swallowed by a daylight-saving gap
            if merged and piece_start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], piece_end))
            else:
                merged.append((piece_start, piece_end))
        return merged

    def _is_holiday(self, day: date) -> bool:
        if self._country is None:
            return False
        return day in _holiday_dates(self._country, self._subdivision, day.year)

    def _instant(self, day: date, minutes: int) -> datetime:
        """A local wall-clock time as a UTC instant (fold=0: gaps map forward, overlaps to the first pass)."""
        if minutes == 24 * 60:
            return self._midnight(day + _ONE_DAY)
        local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self._zone)
        return local.astimezone(UTC)

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=self._zone).astimezone(UTC)

    def _day_of(self, at: datetime) -> date:
        """The local day whose bounds contain the UTC instant."""
        day = at.astimezone(self._zone).date()
        while at < self._midnight(day):
            day -= _ONE_DAY
        while at >= self._midnight(day + _ONE_DAY):
            day += _ONE_DAY
        return day


def _utc(at: object) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommand(f"the instant must be a date-time with a time zone, not {at!r}")
    return at.astimezone(UTC)


def _zone(key: object) -> ZoneInfo:
    if not isinstance(key, str) or not key:
        raise InvalidCommand(f"the time zone must be a name such as 'Europe/Paris', not {key!r}")
    try:
        return ZoneInfo(key)
    except (KeyError, ValueError, OSError):
        raise InvalidCommand(f"unknown time zone {key!r} (expected a name such as 'Europe/Paris')") from None


def _minutes(text: object, *, allow_midnight_end: bool) -> int:
    match = _HHMM.fullmatch(text) if isinstance(text, str) else None
    if match is not None:
        hour, minute = int(match[1]), int(match[2])
        if (hour < 24 and minute < 60) or (allow_midnight_end and (hour, minute) == (24, 0)):
            return hour * 60 + minute
    limit = "24:00" if allow_midnight_end else "23:59"
    raise InvalidCommand(f"a time of day must be written HH:MM between 00:00 and {limit}, not {text!r}")


def _weekly_minutes(hours: object) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Validate the hours of a spec; per weekday, the merged (start, end) minutes after local midnight."""
    if not isinstance(hours, tuple):
        raise InvalidCommand(f"calendar hours must be a tuple of (weekday, start, end), not {hours!r}")
    week: list[list[tuple[int, int]]] = [[] for _ in WEEKDAYS]
    for entry in hours:
        if not isinstance(entry, tuple | list) or len(entry) != 3:
            raise InvalidCommand(f"each calendar hours entry must be (weekday, start, end), not {entry!r}")
        weekday, start_text, end_text = entry
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise InvalidCommand(f"the weekday must be 0 (Monday) to 6 (Sunday), not {weekday!r}")
        start = _minutes(start_text, allow_midnight_end=False)
        end = _minutes(end_text, allow_midnight_end=True)
        if start >= end:
            raise InvalidCommand(
                f"on {WEEKDAYS[weekday]} coverage must start before it ends, not {start_text}–{end_text}"
            )
        week[weekday].append((start, end))
    merged_week = []
    for ranges in week:
        merged: list[tuple[int, int]] = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        merged_week.append(tuple(merged))
    return tuple(merged_week)


def _parse_days(days: str) -> list[int]:
    """'Mon-Fri', 'Mon-Sat', 'Mon,Wed,Fri', 'Mon-Wed,Sat' as weekday numbers (0=Monday)."""
    if not isinstance(days, str) or not days.strip():
        raise InvalidCommand(f"days must be written like 'Mon-Fri' or 'Mon,Wed,Fri', not {days!r}")
    chosen: set[int] = set()
    for part in days.split(","):
        bounds = [_day_number(name, days) for name in part.split("-")]
        if len(bounds) == 1:
            chosen.add(bounds[0])
        elif len(bounds) == 2:
            first, last = bounds
            chosen.update((first + offset) % 7 for offset in range((last - first) % 7 + 1))
        else:
            raise InvalidCommand(f"days must be written like 'Mon-Fri' or 'Mon,Wed,Fri', not {days!r}")
    return sorted(chosen)


def _day_number(name: str, days: str) -> int:
    key = name.strip().lower()
    for index, full in enumerate(WEEKDAYS):
        if key in (full[:3].lower(), full.lower()):
            return index
    raise InvalidCommand(f"unknown day {name.strip()!r} in {days!r} (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)")


def _check_holidays(country: object, subdivision: object) -> None:
    if not isinstance(country, str) or not country:
        raise InvalidCommand(f"the holiday country must be a code such as 'FR', not {country!r}")
    if subdivision is not None and (not isinstance(subdivision, str) or not subdivision):
        raise InvalidCommand(f"the holiday subdivision must be a code such as '57', not {subdivision!r}")
    try:
        holidays.country_holidays(country)
    except NotImplementedError:
        raise InvalidCommand(f"no public holidays are known for country {country!r}") from None
    if subdivision is not None:
        try:
            holidays.country_holidays(country, subdiv=subdivision)
        except NotImplementedError:
            raise InvalidCommand(
                f"no public holidays are known for subdivision {subdivision!r} of country {country!r}"
            ) from None


@lru_cache(maxsize=512)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    """The public holidays of one year, as local dates."""
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year))
