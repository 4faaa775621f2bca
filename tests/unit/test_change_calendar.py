"""Every rule of an account's ChangeCalendar: freezes, weekly maintenance windows, booked changes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.application import Application
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.change import ChangeConflict, ScheduledWindow
from domain.change_calendar import ChangeCalendar, MaintenanceWindows, calendar_id
from domain.errors import DomainError, IllegalTransition, InvalidCommand, NotFound

PARIS = ZoneInfo("Europe/Paris")
ACCOUNT = "resto-chain"
CHANGE_A = UUID("c4a11e00-0000-4000-8000-00000000000a")
CHANGE_B = UUID("c4a11e00-0000-4000-8000-00000000000b")
T0 = datetime(2026, 5, 20, 9, 0, tzinfo=UTC)
MANAGER = "change-manager"


def paris(day: str, hm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hm}").replace(tzinfo=PARIS)


def opened() -> ChangeCalendar:
    return ChangeCalendar.open(account=ACCOUNT, actor=MANAGER, at=T0)


def event_names(calendar: ChangeCalendar) -> list[str]:
    return [type(e).__name__ for e in calendar.pending_events]


def assert_refused(
    calendar: ChangeCalendar, error: type[DomainError], command: Callable[[], object], match: str | None = None
) -> DomainError:
    """The command raises `error` and leaves the calendar exactly as it was: no event, no change."""
    pending = len(calendar.pending_events)
    before = calendar.summary()
    state = copy.deepcopy(vars(calendar))
    with pytest.raises(error, match=match) as refusal:
        command()
    assert len(calendar.pending_events) == pending
    assert calendar.summary() == before
    assert vars(calendar) == state
    return refusal.value


def book(calendar: ChangeCalendar, change: UUID, cis: tuple[str, ...], start: datetime, end: datetime) -> None:
    calendar.book(change_id=change, cis=cis, start=start, end=end, actor=MANAGER, at=T0)


# -- opening --------------------------------------------------------------------------------------


def test_each_account_has_one_calendar_whose_id_derives_from_its_name() -> None:
    calendar = opened()
    assert calendar.id == calendar_id(ACCOUNT) == calendar_id(f"  {ACCOUNT} ")
    assert calendar_id("other-account") != calendar.id
    assert calendar.account == ACCOUNT
    [created] = calendar.pending_events
    assert (type(created).__name__, created.actor, created.at) == ("Opened", MANAGER, T0)  # type: ignore[attr-defined]
    assert calendar.summary()["freeze_windows"] == calendar.summary()["bookings"] == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"account": " "}, "account is required"),
        ({"actor": ""}, "actor is required"),
        ({"at": datetime(2026, 5, 20, 9, 0)}, "must be a date-time with a time zone"),
    ],
)
def test_opening_without_account_actor_or_aware_instant_is_refused(overrides: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"account": ACCOUNT, "actor": MANAGER, "at": T0, **overrides}
    with pytest.raises(InvalidCommand, match=message):
        ChangeCalendar.open(**values)


# -- freeze windows -------------------------------------------------------------------------------


def test_a_freeze_window_is_recorded_with_who_declared_it_and_when() -> None:
    calendar = opened()
    calendar.add_freeze(
        name="year-end", start=paris("2026-12-15", "00:00"), end=paris("2027-01-05", "00:00"),
        reason="restaurants' busiest weeks", actor=MANAGER, at=T0 + timedelta(hours=1),
    )  # fmt: skip
    event = calendar.pending_events[-1]
    assert type(event).__name__ == "FreezeAdded"
    assert (event.actor, event.at) == (MANAGER, T0 + timedelta(hours=1))  # type: ignore[attr-defined]
    [freeze] = calendar.freezes
    assert (freeze.name, freeze.start, freeze.reason) == (
        "year-end",
        paris("2026-12-15", "00:00"),
        "restaurants' busiest weeks",
    )


def test_redefining_a_freeze_window_replaces_it_and_declaring_it_again_changes_nothing() -> None:
    calendar = opened()
    calendar.add_freeze(
        name="sales", start=paris("2026-06-24", "00:00"), end=paris("2026-07-01", "00:00"), actor=MANAGER, at=T0
    )
    calendar.add_freeze(
        name="sales", start=paris("2026-06-24", "00:00"), end=paris("2026-07-08", "00:00"), actor=MANAGER, at=T0
    )
    assert [f.end for f in calendar.freezes] == [paris("2026-07-08", "00:00")]
    events = len(calendar.pending_events)
    calendar.add_freeze(
        name="sales", start=paris("2026-06-24", "00:00"), end=paris("2026-07-08", "00:00"), actor=MANAGER, at=T0
    )
    assert len(calendar.pending_events) == events


def test_freeze_windows_are_listed_earliest_first() -> None:
    calendar = opened()
    calendar.add_freeze(
        name="late", start=paris("2026-12-01", "00:00"), end=paris("2026-12-02", "00:00"), actor=MANAGER, at=T0
    )
    calendar.add_freeze(
        name="early", start=paris("2026-06-01", "00:00"), end=paris("2026-06-02", "00:00"), actor=MANAGER, at=T0
    )
    assert [f.name for f in calendar.freezes] == ["early", "late"]


@pytest.mark.parametrize(
    ("name", "start", "end", "message"),
    [
        ("", paris("2026-06-01", "00:00"), paris("2026-06-02", "00:00"), "the name of a freeze window is required"),
        ("x", paris("2026-06-02", "00:00"), paris("2026-06-01", "00:00"), "freeze window x must end after it starts"),
        ("x", paris("2026-06-02", "00:00"), paris("2026-06-02", "00:00"), "freeze window x must end after it starts"),
        ("x", datetime(2026, 6, 1), paris("2026-06-02", "00:00"), "the start of freeze window x must be a date-time"),
    ],
)
def test_a_freeze_window_without_name_or_proper_bounds_is_refused(
    name: str, start: datetime, end: datetime, message: str
) -> None:
    calendar = opened()
    assert_refused(
        calendar,
        InvalidCommand,
        lambda: calendar.add_freeze(name=name, start=start, end=end, actor=MANAGER, at=T0),
        message,
    )


def test_lifting_a_freeze_window_removes_it() -> None:
    calendar = opened()
    calendar.add_freeze(
        name="sales", start=paris("2026-06-24", "00:00"), end=paris("2026-07-01", "00:00"), actor=MANAGER, at=T0
    )
    calendar.remove_freeze(name="sales", actor=MANAGER, at=T0)
    assert calendar.freezes == ()
    assert event_names(calendar)[-1] == "FreezeRemoved"


def test_lifting_an_unknown_freeze_window_names_the_ones_there_are() -> None:
    calendar = opened()
    calendar.add_freeze(
        name="sales", start=paris("2026-06-24", "00:00"), end=paris("2026-07-01", "00:00"), actor=MANAGER, at=T0
    )
    assert_refused(
        calendar, NotFound, lambda: calendar.remove_freeze(name="xmas", actor=MANAGER, at=T0),
        "there is no freeze window 'xmas' in the change calendar of account resto-chain \\(freeze windows: sales\\)",
    )  # fmt: skip


def test_a_freeze_declared_over_booked_changes_keeps_them_and_lists_them() -> None:
    calendar = opened()
    book(calendar, CHANGE_A, ("router-1",), paris("2026-06-25", "22:00"), paris("2026-06-25", "23:00"))
    book(calendar, CHANGE_B, ("router-2",), paris("2026-07-25", "22:00"), paris("2026-07-25", "23:00"))
    calendar.add_freeze(
        name="sales", start=paris("2026-06-24", "00:00"), end=paris("2026-07-01", "00:00"), actor=MANAGER, at=T0
    )
    assert [
        b.change_id for b in calendar.bookings_during(paris("2026-06-24", "00:00"), paris("2026-07-01", "00:00"))
    ] == [CHANGE_A]
    assert len(calendar.bookings) == 2


# -- maintenance windows --------------------------------------------------------------------------

SUNDAY_NIGHT = (6, "22:00", "04:00")  # Sunday 22:00 to Monday 04:00, Paris time


def with_windows(
    *windows: tuple[int, str, str], ci: str = "router-1", timezone: str = "Europe/Paris"
) -> ChangeCalendar:
    calendar = opened()
    calendar.set_maintenance_windows(ci=ci, windows=windows, timezone=timezone, actor=MANAGER, at=T0)
    return calendar


def test_a_window_inside_a_weekly_maintenance_window_is_within_it() -> None:
    calendar = with_windows((1, "01:00", "05:00"))  # Tuesdays 01:00–05:00
    assert calendar.within_maintenance_windows(["router-1"], paris("2026-06-02", "02:00"), paris("2026-06-02", "05:00"))
    assert not calendar.within_maintenance_windows(
        ["router-1"], paris("2026-06-02", "04:00"), paris("2026-06-02", "05:01")
    )
    assert not calendar.within_maintenance_windows(
        ["router-1"], paris("2026-06-03", "02:00"), paris("2026-06-03", "03:00")
    )


def test_a_maintenance_window_ending_before_it_starts_runs_past_midnight() -> None:
    calendar = with_windows(SUNDAY_NIGHT)
    sunday, monday = "2026-06-07", "2026-06-08"
    assert calendar.within_maintenance_windows(["router-1"], paris(sunday, "23:00"), paris(monday, "03:00"))
    assert calendar.within_maintenance_windows(["router-1"], paris(monday, "00:00"), paris(monday, "04:00"))
    assert not calendar.within_maintenance_windows(["router-1"], paris(monday, "03:00"), paris(monday, "04:30"))
    assert not calendar.within_maintenance_windows(
        ["router-1"], paris("2026-06-09", "00:00"), paris("2026-06-09", "01:00")
    )


def test_adjoining_maintenance_windows_cover_a_change_spanning_both() -> None:
    calendar = with_windows((5, "22:00", "24:00"), (6, "00:00", "02:00"))
    assert calendar.within_maintenance_windows(["router-1"], paris("2026-06-06", "23:00"), paris("2026-06-07", "01:00"))


def test_maintenance_windows_follow_paris_wall_clock_time_across_daylight_saving() -> None:
    calendar = with_windows((6, "02:00", "06:00"))
    winter = datetime(2026, 1, 11, 1, 0, tzinfo=UTC)  # Sunday 02:00 in Paris (UTC+1)
    summer = datetime(2026, 6, 7, 0, 0, tzinfo=UTC)  # Sunday 02:00 in Paris (UTC+2)
    assert calendar.within_maintenance_windows(["router-1"], winter, winter + timedelta(hours=4))
    assert calendar.within_maintenance_windows(["router-1"], summer, summer + timedelta(hours=4))
    assert not calendar.within_maintenance_windows(["router-1"], summer, summer + timedelta(hours=4, minutes=1))


def test_maintenance_windows_can_be_kept_in_another_time_zone() -> None:
    calendar = with_windows((6, "02:00", "04:00"), timezone="America/Martinique")  # UTC-4 all year
    assert calendar.within_maintenance_windows(
        ["router-1"], datetime(2026, 6, 7, 6, 0, tzinfo=UTC), datetime(2026, 6, 7, 8, 0, tzinfo=UTC)
    )


def test_only_the_cis_whose_windows_do_not_cover_the_change_are_outside() -> None:
    calendar = with_windows(SUNDAY_NIGHT)
    calendar.set_maintenance_windows(ci="switch-9", windows=[(2, "01:00", "03:00")], actor=MANAGER, at=T0)
    start, end = paris("2026-06-07", "23:00"), paris("2026-06-08", "00:00")
    assert calendar.outside_maintenance_windows(["router-1", "switch-9", "site-12"], start, end) == ("switch-9",)


def test_a_ci_without_maintenance_windows_does_not_constrain_its_changes() -> None:
    calendar = opened()
    assert calendar.within_maintenance_windows(["router-1"], paris("2026-06-03", "14:00"), paris("2026-06-03", "15:00"))


def test_setting_no_windows_lifts_a_cis_constraint() -> None:
    calendar = with_windows(SUNDAY_NIGHT)
    calendar.set_maintenance_windows(ci="router-1", windows=[], actor=MANAGER, at=T0)
    assert calendar.maintenance_windows("router-1") is None
    assert calendar.within_maintenance_windows(["router-1"], paris("2026-06-03", "14:00"), paris("2026-06-03", "15:00"))
    assert event_names(calendar)[-1] == "MaintenanceWindowsSet"


def test_setting_the_same_windows_again_changes_nothing() -> None:
    calendar = with_windows(SUNDAY_NIGHT, (2, "01:00", "03:00"))
    events = len(calendar.pending_events)
    calendar.set_maintenance_windows(ci="router-1", windows=[(2, "01:00", "03:00"), SUNDAY_NIGHT], actor=MANAGER, at=T0)
    calendar.set_maintenance_windows(ci="switch-9", windows=[], actor=MANAGER, at=T0)
    assert len(calendar.pending_events) == events


def test_maintenance_windows_read_as_weekday_names() -> None:
    windows = with_windows(SUNDAY_NIGHT).maintenance_windows("router-1")
    assert windows is not None
    assert windows.to_dict() == {
        "ci": "router-1",
        "timezone": "Europe/Paris",
        "windows": [{"weekday": 6, "day": "Sunday", "start": "22:00", "end": "04:00"}],
    }


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        (
            [(7, "01:00", "02:00")],
            "the weekday of a maintenance window must be 0 \\(Monday\\) to 6 \\(Sunday\\), not 7",
        ),
        ([(True, "01:00", "02:00")], "the weekday of a maintenance window must be"),
        ([(1, "25:00", "02:00")], "the start of the Tuesday maintenance window of router-1 must be a time of day"),
        ([(1, "01:00", "2h")], "the end of the Tuesday maintenance window of router-1 must be a time of day"),
        ([(1, "24:00", "02:00")], "cannot start at 24:00"),
        ([(1, "01:00", "01:00")], "cannot start at 01:00 and end at 01:00: use 00:00–24:00 for a whole day"),
        ([(1, "01:00", "02:00"), (1, "01:00", "02:00")], "01:00–02:00 is listed twice"),
        ([(1, "01:00")], "each maintenance window must be \\(weekday, start, end\\)"),
        ("Sun 22-04", "must be a list of \\(weekday, start, end\\)"),
    ],
)
def test_malformed_maintenance_windows_are_refused(windows: Any, message: str) -> None:
    calendar = opened()
    assert_refused(
        calendar, InvalidCommand,
        lambda: calendar.set_maintenance_windows(ci="router-1", windows=windows, actor=MANAGER, at=T0), message,
    )  # fmt: skip


def test_maintenance_windows_in_an_unknown_time_zone_are_refused() -> None:
    calendar = opened()
    assert_refused(
        calendar, InvalidCommand,
        lambda: calendar.set_maintenance_windows(ci="r", windows=[SUNDAY_NIGHT], timezone="Mars/Olympus", actor=MANAGER, at=T0),
        "unknown time zone 'Mars/Olympus'",
    )  # fmt: skip


_SUMMER_MONDAYS = st.integers(min_value=0, max_value=24).map(
    lambda week: datetime(2026, 4, 6, tzinfo=PARIS) + timedelta(weeks=week)
)


@settings(max_examples=100, deadline=None)
@given(
    weekday=st.integers(0, 6),
    first=st.integers(0, 47),
    length=st.integers(1, 47),
    monday=_SUMMER_MONDAYS,
    shift=st.integers(-8, 100),
    duration=st.integers(1, 100),
)
def test_a_change_is_within_a_window_exactly_when_every_minute_of_it_is(
    weekday: int, first: int, length: int, monday: datetime, shift: int, duration: int
) -> None:
    """Against a minute-by-minute check in Paris local time (between daylight-saving changes)."""
    start_minute = first * 30
    end_minute = (start_minute + length * 30) % (24 * 60)
    window = (
        weekday,
        f"{start_minute // 60:02d}:{start_minute % 60:02d}",
        f"{end_minute // 60:02d}:{end_minute % 60:02d}",
    )
    windows = MaintenanceWindows(ci="r", timezone="Europe/Paris", windows=(window,))
    start = monday + timedelta(days=weekday, minutes=start_minute + 15 * shift)  # near an occurrence of the window
    end = start + timedelta(minutes=15 * duration)

    def inside(instant: datetime) -> bool:
        local = instant.astimezone(PARIS)
        since_window_day = (local.weekday() - weekday) % 7 * 24 * 60 + local.hour * 60 + local.minute
        return start_minute <= since_window_day < start_minute + length * 30

    every_minute = all(inside(start + timedelta(minutes=m)) for m in range(0, 15 * duration))
    assert windows.cover(start, end) == every_minute


# -- bookings -------------------------------------------------------------------------------------


def test_booking_records_the_change_window_on_its_cis() -> None:
    calendar = opened()
    book(calendar, CHANGE_A, ("router-1", "switch-9"), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"))
    assert calendar.booking(CHANGE_A) == ScheduledWindow(
        change_id=CHANGE_A,
        cis=("router-1", "switch-9"),
        start=paris("2026-06-07", "23:00"),
        end=paris("2026-06-08", "01:00"),
    )
    assert event_names(calendar)[-1] == "ChangeBooked"


def test_booking_over_another_change_on_a_shared_ci_is_refused_naming_it() -> None:
    calendar = opened()
    book(calendar, CHANGE_A, ("router-1", "switch-9"), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"))
    refusal = assert_refused(
        calendar, ChangeConflict,
        lambda: book(calendar, CHANGE_B, ("switch-9",), paris("2026-06-08", "00:30"), paris("2026-06-08", "02:00")),
    )  # fmt: skip
    assert str(refusal) == (
        f"cannot book change {CHANGE_B} 2026-06-08T00:30+02:00–02:00 in the change calendar of account resto-chain:"
        f" change {CHANGE_A} on CI switch-9 overlaps (2026-06-07T23:00+02:00–2026-06-08T01:00+02:00)"
    )


def test_changes_on_different_cis_or_back_to_back_windows_do_not_conflict() -> None:
    calendar = opened()
    book(calendar, CHANGE_A, ("router-1",), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"))
    book(calendar, CHANGE_B, ("router-2",), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"))
    other = UUID("c4a11e00-0000-4000-8000-00000000000c")
    book(calendar, other, ("router-1",), paris("2026-06-08", "01:00"), paris("2026-06-08", "02:00"))
    assert len(calendar.bookings) == 3


def test_booking_over_a_freeze_window_is_refused_naming_it() -> None:
    calendar = opened()
    calendar.add_freeze(
        name="sales", start=paris("2026-06-24", "00:00"), end=paris("2026-07-01", "00:00"), actor=MANAGER, at=T0
    )
    assert_refused(
        calendar, ChangeConflict,
        lambda: book(calendar, CHANGE_A, ("router-1",), paris("2026-06-30", "23:00"), paris("2026-07-01", "01:00")),
        "freeze window sales overlaps",
    )  # fmt: skip


def test_re_booking_a_change_moves_its_window_without_conflicting_with_itself() -> None:
    calendar = opened()
    book(calendar, CHANGE_A, ("router-1",), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"))
    book(calendar, CHANGE_A, ("router-1",), paris("2026-06-08", "00:00"), paris("2026-06-08", "02:00"))
    [booking] = calendar.bookings
    assert booking.start == paris("2026-06-08", "00:00")


def test_booking_the_same_window_twice_is_refused() -> None:
    calendar = opened()
    book(calendar, CHANGE_A, ("router-1",), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"))
    refusal = assert_refused(
        calendar, IllegalTransition,
        lambda: book(calendar, CHANGE_A, ("router-1",), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00")),
    )  # fmt: skip
    assert "it is already booked 2026-06-07T23:00+02:00" in str(refusal)


@pytest.mark.parametrize(
    ("change", "cis", "start", "end", "message"),
    [
        ("not-a-uuid", ("r",), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"), "change id must be a UUID"),
        (CHANGE_A, (), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"), "it names no CI"),
        (CHANGE_A, "router-1", paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"), "must be a list of names"),
        (CHANGE_A, ("r",), paris("2026-06-08", "01:00"), paris("2026-06-07", "23:00"), "must end after it starts"),
    ],
)
def test_booking_with_bad_details_is_refused(
    change: Any, cis: Any, start: datetime, end: datetime, message: str
) -> None:
    calendar = opened()
    assert_refused(calendar, InvalidCommand, lambda: book(calendar, change, cis, start, end), message)


def test_releasing_a_booking_frees_its_cis() -> None:
    calendar = opened()
    book(calendar, CHANGE_A, ("router-1",), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"))
    calendar.release(change_id=CHANGE_A, reason="implemented", actor=MANAGER, at=T0)
    assert calendar.bookings == ()
    book(calendar, CHANGE_B, ("router-1",), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"))


def test_releasing_a_change_without_booking_is_refused() -> None:
    calendar = opened()
    assert_refused(
        calendar, IllegalTransition, lambda: calendar.release(change_id=CHANGE_A, reason="cancelled", actor=MANAGER, at=T0),
        f"cannot release change {CHANGE_A} from the change calendar of account resto-chain: it has no booking",
    )  # fmt: skip


def test_commands_recorded_out_of_order_are_accepted_as_the_calendar_is_shared() -> None:
    calendar = opened()
    book(calendar, CHANGE_A, ("router-1",), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"))
    calendar.release(change_id=CHANGE_A, reason="implemented", actor=MANAGER, at=T0 - timedelta(hours=1))
    assert calendar.bookings == ()


# -- replay ---------------------------------------------------------------------------------------


def test_a_calendar_stored_and_read_back_has_the_same_state() -> None:
    calendar = with_windows(SUNDAY_NIGHT, (2, "01:00", "03:00"))
    calendar.add_freeze(
        name="sales",
        start=paris("2026-06-24", "00:00"),
        end=paris("2026-07-01", "00:00"),
        reason="peak",
        actor=MANAGER,
        at=T0,
    )
    book(calendar, CHANGE_A, ("router-1", "switch-9"), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"))
    book(calendar, CHANGE_B, ("router-2",), paris("2026-06-07", "23:00"), paris("2026-06-08", "01:00"))
    calendar.release(change_id=CHANGE_B, reason="cancelled", actor=MANAGER, at=T0)
    app: Application[UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(calendar)

    stored: ChangeCalendar = app.repository.get(calendar.id)

    assert stored.summary() == calendar.summary()
    assert stored.maintenance_windows("router-1") == calendar.maintenance_windows("router-1")
    assert stored.booking(CHANGE_A) == calendar.booking(CHANGE_A)
    assert stored.conflicts(CHANGE_B, ["switch-9"], paris("2026-06-08", "00:00"), paris("2026-06-08", "00:30"))


def test_an_empty_or_backwards_window_is_left_for_the_change_to_refuse() -> None:
    calendar = with_windows(SUNDAY_NIGHT)
    start = paris("2026-06-03", "14:00")
    assert calendar.outside_maintenance_windows(["router-1"], start, start) == ()
    assert calendar.conflicts(CHANGE_A, ["router-1"], start, start - timedelta(hours=1)) == []
