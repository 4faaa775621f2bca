"""Business-time arithmetic: covered hours, French public holidays, daylight saving, validation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.calendar import BusinessCalendar, CalendarSpec, always, business_hours
from domain.errors import InvalidCommand

PARIS = ZoneInfo("Europe/Paris")
OFFICE = BusinessCalendar(business_hours())
ROUND_THE_CLOCK = BusinessCalendar(always())
EXTENDED = BusinessCalendar(business_hours("08:00", "20:00", saturday_morning="12:00"))
CALENDARS = pytest.mark.parametrize("calendar", [OFFICE, ROUND_THE_CLOCK], ids=["office", "24/7"])


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def utc(at: datetime) -> datetime:
    """Compare through UTC: same-tzinfo datetimes compare by wall clock, ambiguous ones never equal."""
    return at.astimezone(UTC)


instants = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2027, 12, 31, 23, 59, 59),
    timezones=st.sampled_from([UTC, PARIS, ZoneInfo("America/New_York")]),
    allow_imaginary=False,
)
durations = st.timedeltas(min_value=timedelta(0), max_value=hours(100))
SETTINGS = settings(deadline=None, max_examples=200)

FRENCH_WEEKDAY_HOLIDAYS = sorted(
    day for day in holidays.country_holidays("FR", years=range(2025, 2028)) if day.weekday() < 5
)


# --- properties -------------------------------------------------------------------------------------


@CALENDARS
@SETTINGS
@given(start=instants, duration=durations)
def test_measuring_up_to_the_deadline_gives_back_the_duration(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    assert calendar.measure(start, calendar.add(start, duration)) == duration


@CALENDARS
@SETTINGS
@given(start=instants, first=durations, second=durations)
def test_a_longer_duration_never_ends_earlier(
    calendar: BusinessCalendar, start: datetime, first: timedelta, second: timedelta
) -> None:
    shorter, longer = sorted((first, second))
    assert calendar.add(start, shorter) <= calendar.add(start, longer)


@CALENDARS
@SETTINGS
@given(a=instants, b=instants)
def test_covered_time_never_exceeds_elapsed_time(calendar: BusinessCalendar, a: datetime, b: datetime) -> None:
    measured = calendar.measure(a, b)
    assert timedelta(0) <= measured <= max(utc(b) - utc(a), timedelta(0))


@CALENDARS
@SETTINGS
@given(points=st.lists(instants, min_size=3, max_size=3))
def test_measure_is_additive(calendar: BusinessCalendar, points: list[datetime]) -> None:
    a, b, c = sorted(points, key=utc)
    assert calendar.measure(a, c) == calendar.measure(a, b) + calendar.measure(b, c)


@CALENDARS
@SETTINGS
@given(start=instants, duration=durations)
def test_deadline_is_never_inside_uncovered_time(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    deadline = calendar.add(start, duration)
    assert deadline >= start
    assert deadline.tzinfo is UTC
    if duration == timedelta(0):
        assert deadline == utc(start)
    elif not calendar.is_covered(deadline):
        last_piece = list(calendar.covered_intervals(start, deadline))[-1]
        assert last_piece[1] == deadline


@CALENDARS
@SETTINGS
@given(a=instants, b=instants)
def test_covered_intervals_add_up_to_the_measure(calendar: BusinessCalendar, a: datetime, b: datetime) -> None:
    pieces = list(calendar.covered_intervals(a, b))
    assert sum((end - start for start, end in pieces), timedelta(0)) == calendar.measure(a, b)
    for start, end in pieces:
        assert a <= start < end <= b
        assert start.tzinfo is UTC and end.tzinfo is UTC
        assert calendar.is_covered(start)
    for (_, previous_end), (next_start, _) in zip(pieces, pieces[1:], strict=False):
        assert previous_end < next_start


@CALENDARS
@SETTINGS
@given(at=instants)
def test_next_covered_is_the_instant_itself_or_the_next_opening(calendar: BusinessCalendar, at: datetime) -> None:
    following = calendar.next_covered(at)
    assert following >= at
    assert calendar.is_covered(following)
    assert calendar.measure(at, following) == timedelta(0)
    assert (following == utc(at)) == calendar.is_covered(at)


@SETTINGS
@given(
    holiday=st.sampled_from(FRENCH_WEEKDAY_HOLIDAYS),
    start_minute=st.integers(0, 24 * 60),
    end_minute=st.integers(0, 24 * 60),
)
def test_nothing_is_covered_on_a_french_public_holiday(holiday: date, start_minute: int, end_minute: int) -> None:
    midnight = datetime.combine(holiday, time(0), tzinfo=PARIS)
    next_midnight = datetime.combine(holiday + timedelta(days=1), time(0), tzinfo=PARIS)
    assert OFFICE.measure(midnight, next_midnight) == timedelta(0)
    a, b = sorted((start_minute, end_minute))
    assert OFFICE.measure(midnight + timedelta(minutes=a), midnight + timedelta(minutes=b)) == timedelta(0)
    assert ROUND_THE_CLOCK.measure(midnight, next_midnight) == next_midnight - midnight


def test_there_are_weekday_holidays_to_draw_from() -> None:
    assert date(2026, 5, 1) in FRENCH_WEEKDAY_HOLIDAYS
    assert len(FRENCH_WEEKDAY_HOLIDAYS) >= 20


# --- hand-computed cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "duration", "deadline"),
    [
        pytest.param(paris(2026, 5, 15, 17), hours(4), paris(2026, 5, 18, 11), id="friday-evening-to-monday"),
        pytest.param(paris(2026, 4, 30, 17), hours(2), paris(2026, 5, 4, 9), id="labour-day-friday"),
        pytest.param(paris(2026, 7, 13, 17), hours(2), paris(2026, 7, 15, 9), id="bastille-day-tuesday"),
        pytest.param(paris(2026, 12, 24, 17), hours(2), paris(2026, 12, 28, 9), id="christmas-friday"),
        pytest.param(paris(2026, 4, 3, 17), hours(2), paris(2026, 4, 7, 9), id="easter-monday"),
        pytest.param(paris(2026, 3, 2, 9), hours(1), paris(2026, 3, 2, 10), id="same-morning"),
        pytest.param(paris(2026, 3, 2, 9), hours(10), paris(2026, 3, 3, 9), id="one-full-day"),
        pytest.param(paris(2026, 3, 7, 10), hours(1), paris(2026, 3, 9, 9), id="from-saturday"),
        pytest.param(paris(2026, 3, 2, 6), hours(0), paris(2026, 3, 2, 6), id="zero-before-opening"),
        pytest.param(paris(2026, 3, 2, 12), hours(6), paris(2026, 3, 2, 18), id="ends-at-closing"),
        pytest.param(paris(2026, 3, 2, 8), hours(50), paris(2026, 3, 6, 18), id="a-whole-week"),
        pytest.param(paris(2026, 3, 27, 17), hours(2), paris(2026, 3, 30, 9), id="spring-forward-weekend"),
        pytest.param(paris(2026, 10, 23, 17), hours(2), paris(2026, 10, 26, 9), id="fall-back-weekend"),
    ],
)
def test_office_hours_deadlines(start: datetime, duration: timedelta, deadline: datetime) -> None:
    assert OFFICE.add(start, duration) == deadline
    assert OFFICE.add(start.astimezone(UTC), duration) == deadline
    assert OFFICE.measure(start, deadline) == duration


@pytest.mark.parametrize(
    ("start", "end", "covered"),
    [
        pytest.param(paris(2026, 3, 2, 17), paris(2026, 3, 3, 9), hours(2), id="overnight"),
        pytest.param(paris(2026, 3, 6, 16), paris(2026, 3, 9, 10), hours(4), id="over-weekend"),
        pytest.param(paris(2026, 3, 27, 17), paris(2026, 3, 30, 9), hours(2), id="spring-forward-weekend"),
        pytest.param(paris(2026, 10, 23, 17), paris(2026, 10, 26, 9), hours(2), id="fall-back-weekend"),
        pytest.param(paris(2026, 4, 30, 0), paris(2026, 5, 4, 0), hours(10), id="labour-day-long-weekend"),
        pytest.param(paris(2026, 7, 14, 0), paris(2026, 7, 15, 0), hours(0), id="bastille-day"),
        pytest.param(paris(2026, 3, 7, 0), paris(2026, 3, 9, 0), hours(0), id="weekend"),
        pytest.param(paris(2026, 3, 3, 9), paris(2026, 3, 2, 17), hours(0), id="end-before-start"),
    ],
)
def test_office_hours_pause_the_clock(start: datetime, end: datetime, covered: timedelta) -> None:
    assert OFFICE.measure(start, end) == covered
    assert OFFICE.measure(start.astimezone(UTC), end.astimezone(UTC)) == covered


def test_daylight_saving_days_last_23_and_25_hours_round_the_clock() -> None:
    assert ROUND_THE_CLOCK.measure(paris(2026, 3, 28, 12), paris(2026, 3, 29, 12)) == hours(23)
    assert ROUND_THE_CLOCK.measure(paris(2026, 10, 24, 12), paris(2026, 10, 25, 12)) == hours(25)
    assert ROUND_THE_CLOCK.add(paris(2026, 3, 28, 12), hours(24)) == paris(2026, 3, 29, 13)
    assert ROUND_THE_CLOCK.add(paris(2026, 10, 24, 12), hours(24)) == paris(2026, 10, 25, 11)


def test_round_the_clock_counts_public_holidays() -> None:
    assert ROUND_THE_CLOCK.measure(paris(2026, 12, 25), paris(2026, 12, 26)) == hours(24)
    assert ROUND_THE_CLOCK.is_covered(paris(2026, 5, 1, 3))


def test_saturday_mornings_are_covered_on_extended_hours() -> None:
    assert EXTENDED.add(paris(2026, 3, 7, 11), hours(3)) == paris(2026, 3, 9, 10)
    assert EXTENDED.add(paris(2026, 3, 6, 19), hours(2)) == paris(2026, 3, 7, 9)
    assert EXTENDED.measure(paris(2026, 3, 6, 0), paris(2026, 3, 9, 0)) == hours(16)
    assert not EXTENDED.is_covered(paris(2026, 3, 7, 12))


def test_alsace_moselle_also_rests_on_good_friday() -> None:
    alsace = BusinessCalendar(business_hours(subdivision="57"))
    assert alsace.add(paris(2026, 4, 2, 17), hours(2)) == paris(2026, 4, 7, 9)
    assert OFFICE.add(paris(2026, 4, 2, 17), hours(2)) == paris(2026, 4, 3, 9)


def test_no_holidays_when_no_country() -> None:
    open_on_holidays = BusinessCalendar(business_hours(country=None))
    assert open_on_holidays.measure(paris(2026, 5, 1), paris(2026, 5, 2)) == hours(10)


def test_is_covered_at_the_edges() -> None:
    assert OFFICE.is_covered(paris(2026, 3, 2, 8))
    assert not OFFICE.is_covered(paris(2026, 3, 2, 18))
    assert OFFICE.is_covered(paris(2026, 3, 2, 17, 59))
    assert not OFFICE.is_covered(paris(2026, 3, 2, 7, 59))
    assert not OFFICE.is_covered(paris(2026, 5, 1, 10))
    assert OFFICE.is_covered(datetime(2026, 3, 2, 7, 30, tzinfo=UTC))


def test_next_covered() -> None:
    assert OFFICE.next_covered(paris(2026, 3, 7, 10)) == paris(2026, 3, 9, 8)
    assert OFFICE.next_covered(paris(2026, 3, 9, 10)) == paris(2026, 3, 9, 10)
    assert OFFICE.next_covered(paris(2026, 4, 30, 18)) == paris(2026, 5, 4, 8)
    assert OFFICE.next_covered(paris(2026, 3, 9, 10)).tzinfo is UTC


def test_covered_intervals_are_the_open_hours_in_utc() -> None:
    pieces = list(OFFICE.covered_intervals(paris(2026, 3, 27, 16), paris(2026, 3, 31, 10)))
    assert pieces == [
        (paris(2026, 3, 27, 16), paris(2026, 3, 27, 18)),
        (paris(2026, 3, 30, 8), paris(2026, 3, 30, 18)),
        (paris(2026, 3, 31, 8), paris(2026, 3, 31, 10)),
    ]
    assert all(start.tzinfo is UTC and end.tzinfo is UTC for start, end in pieces)
    assert pieces[1] == (datetime(2026, 3, 30, 6, tzinfo=UTC), datetime(2026, 3, 30, 16, tzinfo=UTC))


def test_touching_days_form_one_covered_interval() -> None:
    all_week = BusinessCalendar(business_hours("00:00", "24:00", "Mon-Sun", country=None))
    start, end = paris(2026, 3, 27, 12), paris(2026, 3, 31, 12)
    assert list(all_week.covered_intervals(start, end)) == [(start, end)]
    assert all_week.measure(start, end) == ROUND_THE_CLOCK.measure(start, end) == hours(95)


def test_hours_inside_a_daylight_saving_gap_or_overlap() -> None:
    night = CalendarSpec(hours=((6, "01:00", "04:00"),), holidays_country=None)
    calendar = BusinessCalendar(night)
    assert calendar.measure(paris(2026, 3, 29), paris(2026, 3, 30)) == hours(2)
    assert calendar.measure(paris(2026, 10, 25), paris(2026, 10, 26)) == hours(4)
    assert calendar.measure(paris(2026, 3, 22), paris(2026, 3, 23)) == hours(3)
    gap_edge = BusinessCalendar(CalendarSpec(hours=((6, "02:30", "03:00"),), holidays_country=None))
    assert gap_edge.measure(paris(2026, 3, 29), paris(2026, 3, 30)) == hours(0)
    assert gap_edge.add(paris(2026, 3, 29), timedelta(minutes=30)) == paris(2026, 4, 5, 3)


def test_overlapping_hours_on_one_day_are_merged() -> None:
    spec = CalendarSpec(hours=((0, "08:00", "12:00"), (0, "10:00", "14:00"), (0, "14:00", "15:00")))
    calendar = BusinessCalendar(spec)
    assert calendar.measure(paris(2026, 3, 2), paris(2026, 3, 3)) == hours(7)
    assert list(calendar.covered_intervals(paris(2026, 3, 2), paris(2026, 3, 3))) == [
        (paris(2026, 3, 2, 8), paris(2026, 3, 2, 15))
    ]


def test_microseconds_are_kept_exactly() -> None:
    start = paris(2026, 3, 2, 17, 59) + timedelta(seconds=59, microseconds=999_999)
    assert OFFICE.add(start, timedelta(microseconds=2)) == paris(2026, 3, 3, 8) + timedelta(microseconds=1)


def test_durations_of_weeks_are_fine_and_absurd_ones_are_refused() -> None:
    assert OFFICE.add(paris(2026, 3, 2, 8), hours(10 * 5 * 8)) == paris(2026, 4, 27, 18)  # Easter Monday adds a day
    with pytest.raises(InvalidCommand, match="not reached within 3700 days"):
        OFFICE.add(paris(2026, 3, 2, 8), hours(100_000))


def test_business_hours_builds_the_expected_spec() -> None:
    assert business_hours().hours == tuple((day, "08:00", "18:00") for day in range(5))
    assert business_hours("08:00", "20:00", saturday_morning="12:00").hours[-1] == (5, "08:00", "12:00")
    assert [day for day, _, _ in business_hours(days="Mon,Wed-Thu,sat").hours] == [0, 2, 3, 5]
    assert [day for day, _, _ in business_hours(days="Fri-Mon").hours] == [0, 4, 5, 6]
    assert always().is_24_7 and not business_hours().is_24_7
    assert always("UTC").holidays_country is None


# --- validation and storage -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["is_covered", "next_covered"])
def test_naive_instants_are_refused(method: str) -> None:
    with pytest.raises(InvalidCommand, match="with a time zone"):
        getattr(OFFICE, method)(datetime(2026, 3, 2, 9))


def test_naive_instants_are_refused_by_arithmetic() -> None:
    aware, naive = paris(2026, 3, 2, 9), datetime(2026, 3, 2, 9)
    for call in (
        lambda: OFFICE.measure(naive, aware),
        lambda: OFFICE.measure(aware, naive),
        lambda: OFFICE.add(naive, hours(1)),
        lambda: ROUND_THE_CLOCK.add(naive, hours(1)),
        lambda: list(OFFICE.covered_intervals(aware, naive)),
    ):
        with pytest.raises(InvalidCommand, match="with a time zone"):
            call()


def test_negative_durations_are_refused() -> None:
    with pytest.raises(InvalidCommand, match="cannot be negative"):
        OFFICE.add(paris(2026, 3, 2, 9), hours(-1))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (CalendarSpec(hours=((0, "08:00", "25:00"),)), "HH:MM between 00:00 and 24:00, not '25:00'"),
        (CalendarSpec(hours=((0, "24:00", "24:00"),)), "HH:MM between 00:00 and 23:59, not '24:00'"),
        (CalendarSpec(hours=((0, "8h", "18:00"),)), "HH:MM"),
        (CalendarSpec(hours=((0, "08:60", "18:00"),)), "HH:MM"),
        (CalendarSpec(hours=((0, "18:00", "08:00"),)), "on Monday coverage must start before it ends"),
        (CalendarSpec(hours=((2, "08:00", "08:00"),)), "on Wednesday coverage must start before it ends"),
        (CalendarSpec(hours=((7, "08:00", "18:00"),)), "weekday must be 0 \\(Monday\\) to 6 \\(Sunday\\)"),
        (CalendarSpec(timezone="Europe/Pariss"), "unknown time zone 'Europe/Pariss'"),
        (CalendarSpec(timezone="Europe"), "unknown time zone 'Europe'"),
        (CalendarSpec(timezone=""), "time zone must be a name"),
        (CalendarSpec(hours=((0, "08:00", "18:00"),), holidays_country="XX"), "country 'XX'"),
        (
            CalendarSpec(hours=((0, "08:00", "18:00"),), holidays_subdivision="ZZ"),
            "subdivision 'ZZ' of country 'FR'",
        ),
        (
            CalendarSpec(hours=((0, "08:00", "18:00"),), holidays_country=None, holidays_subdivision="57"),
            "needs a holiday country",
        ),
    ],
)
def test_bad_specs_are_refused_with_a_readable_message(spec: CalendarSpec, message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        BusinessCalendar(spec)


def test_business_hours_checks_its_arguments() -> None:
    with pytest.raises(InvalidCommand, match="'25:00'"):
        business_hours("08:00", "25:00")
    with pytest.raises(InvalidCommand, match="unknown day 'Funday'"):
        business_hours(days="Mon-Funday")
    with pytest.raises(InvalidCommand, match="Saturday is already"):
        business_hours(days="Mon-Sat", saturday_morning="12:00")
    with pytest.raises(InvalidCommand, match="must start before it ends"):
        business_hours("08:00", "20:00", saturday_morning="07:00")


def test_24_7_ignores_holiday_settings() -> None:
    assert BusinessCalendar(CalendarSpec(holidays_country="FR")).measure(paris(2026, 5, 1), paris(2026, 5, 2)) == hours(
        24
    )


@pytest.mark.parametrize(
    "spec",
    [
        always(),
        always("America/New_York"),
        business_hours(),
        business_hours("08:00", "20:00", saturday_morning="12:00", subdivision="57"),
        business_hours("00:00", "24:00", "Mon-Sun", country=None),
    ],
)
def test_spec_round_trips_through_json(spec: CalendarSpec) -> None:
    stored = json.dumps(spec.to_dict())
    assert CalendarSpec.from_dict(json.loads(stored)) == spec
    assert CalendarSpec.from_dict(spec.to_dict()) == spec
    BusinessCalendar(CalendarSpec.from_dict(json.loads(stored)))


def test_from_dict_refuses_malformed_data() -> None:
    with pytest.raises(InvalidCommand, match="unknown calendar field"):
        CalendarSpec.from_dict({"tz": "Europe/Paris"})
    with pytest.raises(InvalidCommand, match="list of \\[weekday, start, end\\]"):
        CalendarSpec.from_dict({"hours": "Mon-Fri"})
    with pytest.raises(InvalidCommand, match="\\[weekday, start, end\\]"):
        CalendarSpec.from_dict({"hours": [[0, "08:00"]]})
    assert CalendarSpec.from_dict({}) == CalendarSpec()


@settings(deadline=None, max_examples=50)
@given(start=instants, end=instants)
def test_instants_in_any_time_zone_give_the_same_answers(start: datetime, end: datetime) -> None:
    assume(utc(start) <= utc(end))
    tokyo = ZoneInfo("Asia/Tokyo")
    assert OFFICE.measure(start, end) == OFFICE.measure(start.astimezone(tokyo), end.astimezone(UTC))
    assert OFFICE.is_covered(start) == OFFICE.is_covered(start.astimezone(tokyo))
