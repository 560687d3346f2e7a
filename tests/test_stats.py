"""Reading a weekly series: every expectation below is worked out by hand in the comment beside it."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from readmodels.stats import Summary, iso_week_start, median, summarise, weeks_ending


@pytest.mark.parametrize(
    "case, values, expected",
    [
        (
            # mean (1+2+3+4+10)/5 = 4; deviations -3,-2,-1,0,6 square to 9+4+1+0+36 = 50, /5 = 10, σ = √10 ≈ 3.1623;
            # slope: x̄ = 2, Σ(x-2)(y-4) = 6+2+0+0+12 = 20, Σ(x-2)² = 10, so 2.0 a week; 6 < 2σ ≈ 6.32: no anomaly
            "a rising series with a high last week that is still within two deviations",
            [1, 2, 3, 4, 10],
            Summary(mean=4.0, stddev=math.sqrt(10), slope=2.0, direction="rising", anomalies=()),
        ),
        (
            # mean (90+40)/10 = 13; deviations -3 (nine times) and 27: (81+729)/10 = 81, σ = 9; 27 > 2σ = 18;
            # slope: x̄ = 4.5, Σ(x-4.5)(y-13) = -3·(36-40.5) + 4.5·27 = 13.5 + 121.5 = 135, Σ(x-4.5)² = 82.5 → 18/11
            "a spike more than two deviations from the mean is an anomaly",
            [10, 10, 10, 10, 10, 10, 10, 10, 10, 40],
            Summary(mean=13.0, stddev=9.0, slope=18 / 11, direction="rising", anomalies=(9,)),
        ),
        (
            # mean 5; deviations ±3, ±1: (9+1+1+9)/4 = 5, σ = √5;
            # slope: x̄ = 1.5, Σ(x-1.5)(y-5) = -4.5-0.5-0.5-4.5 = -10, Σ(x-1.5)² = 5, so -2 a week
            "a falling series",
            [8, 6, 4, 2],
            Summary(mean=5.0, stddev=math.sqrt(5), slope=-2.0, direction="falling", anomalies=()),
        ),
        (
            # weeks 0 and 2 only: mean 4, σ 2; slope (6-2)/(2-0) = 2 — it would be 4 if the gap were closed up
            "a missing week keeps the weeks after it in place",
            [2, None, 6],
            Summary(mean=4.0, stddev=2.0, slope=2.0, direction="rising", anomalies=()),
        ),
        (
            # present: index 1 → 5, index 4 → 2; mean 3.5, σ 1.5; slope (2-5)/(4-1) = -1
            "missing weeks at both ends are left out but indices still count from the first week",
            [None, 5, None, None, 2, None],
            Summary(mean=3.5, stddev=1.5, slope=-1.0, direction="falling", anomalies=()),
        ),
        (
            # anomaly index must be 10, not 9: the None at index 4 is skipped, not removed;
            # present: nine 10s and 40 → as the spike case, mean 13, σ 9; slope: x = 0,1,2,3,5,6,7,8,9,10, x̄ = 5.1,
            # Σ(x-5.1)(y-13) = -3·Σ(x-5.1 over the 10s) + 27·4.9 = -3·(41-45.9) + 132.3 = 14.7 + 132.3 = 147,
            # Σ(x-5.1)² = Σx² - 10·5.1² = 385 - 16 - 260.1 = 108.9 → 147/108.9 = 490/363
            "an anomaly after a gap is reported at its own index",
            [10, 10, 10, 10, None, 10, 10, 10, 10, 10, 40],
            Summary(mean=13.0, stddev=9.0, slope=490 / 363, direction="rising", anomalies=(10,)),
        ),
        (
            # a dip: nine 20s and 2 → mean 182/10 = 18.2; deviations 1.8 (nine times) and -16.2:
            # (9·3.24 + 262.44)/10 = 291.6/10 = 29.16, σ = 5.4; 16.2 > 10.8
            # slope: x̄ = 4.5, Σ(x-4.5)(y-18.2) = 1.8·(36-40.5) + (-16.2)(4.5) = -8.1 - 72.9 = -81, /82.5 = -54/55
            "a dip is an anomaly too",
            [20, 20, 20, 20, 20, 20, 20, 20, 20, 2],
            Summary(mean=18.2, stddev=5.4, slope=-54 / 55, direction="falling", anomalies=(9,)),
        ),
        (
            # mean 100.25; x̄ 1.5, Σ(x-1.5)(y-100.25) = 0.375-0.125-0.125+0.375 = 0.5, /5 = 0.1 a week,
            # under the tolerance 1% of 100.25 = 1.0025; σ = 0.25
            "a slope under one percent of the mean per week is steady",
            [100, 100.5, 100, 100.5],
            Summary(mean=100.25, stddev=0.25, slope=0.1, direction="steady", anomalies=()),
        ),
        (
            # mean 0 so the tolerance is its floor 1e-9; slope (1-(-1))/1 = 2; σ 1
            "a zero mean does not hide a trend",
            [-1, 1],
            Summary(mean=0.0, stddev=1.0, slope=2.0, direction="rising", anomalies=()),
        ),
        (
            "a constant series is steady with no spread and no anomalies",
            [7, 7, 7, 7, 7, 7, 7, 7],
            Summary(mean=7.0, stddev=0.0, slope=0.0, direction="steady", anomalies=()),
        ),
        (
            "zero every week is steady",
            [0, 0, 0],
            Summary(mean=0.0, stddev=0.0, slope=0.0, direction="steady", anomalies=()),
        ),
        (
            "a single week has a mean but no trend",
            [3.5],
            Summary(mean=3.5, stddev=0.0, slope=None, direction="steady", anomalies=()),
        ),
        (
            "a single present week among missing ones has no trend either",
            [None, 4, None],
            Summary(mean=4.0, stddev=0.0, slope=None, direction="steady", anomalies=()),
        ),
        (
            "no weeks at all",
            [],
            Summary(mean=None, stddev=None, slope=None, direction="steady", anomalies=()),
        ),
        (
            "only missing weeks",
            [None, None, None],
            Summary(mean=None, stddev=None, slope=None, direction="steady", anomalies=()),
        ),
    ],
)
def test_summarise(case: str, values: list[float | None], expected: Summary) -> None:
    got = summarise(values)
    assert got.mean == pytest.approx(expected.mean)
    assert got.stddev == pytest.approx(expected.stddev)
    assert got.slope == pytest.approx(expected.slope)
    assert (got.direction, got.anomalies) == (expected.direction, expected.anomalies)


def test_the_hand_worked_example_rounds_as_the_page_shows_it() -> None:
    # √10 = 3.16227…, shown to four places
    assert round(summarise([1, 2, 3, 4, 10]).stddev or 0, 4) == 3.1623


def test_a_deviation_of_exactly_two_deviations_is_not_an_anomaly() -> None:
    # [0, 0, 0, 0, 5]: mean 1, deviations -1 (×4) and 4: (4+16)/5 = 4, σ = 2, and 4 is exactly 2σ — not more
    summary = summarise([0, 0, 0, 0, 5])
    assert (summary.mean, summary.stddev) == (1.0, 2.0)
    assert summary.anomalies == ()


def test_five_values_can_never_hold_an_anomaly() -> None:
    # with n values, one can lie at most √(n-1) σ from the mean: √4 = 2, never more than 2σ
    assert summarise([0, 0, 0, 0, 1_000_000]).anomalies == ()


def test_floats_that_do_not_add_up_exactly_still_read_as_constant() -> None:
    # 0.1 + 0.1 + 0.1 is 0.30000000000000004 in floats; the spread must still come out as no spread at all
    summary = summarise([0.1] * 12)
    assert summary.stddev == pytest.approx(0.0, abs=1e-15)
    assert (summary.direction, summary.anomalies) == ("steady", ())


@pytest.mark.parametrize(
    "case, values, expected",
    [
        ("no values", [], None),
        ("one value", [4], 4.0),
        ("odd count: the middle one, whatever the input order", [9, 1, 5], 5.0),
        ("even count: mean of the two middle ones", [1, 4, 2, 8], 3.0),  # sorted 1,2,4,8 → (2+4)/2
        ("even count with a fractional middle", [1, 2], 1.5),
        ("hours, as review times come", [0.5, 26.25, 3.0], 3.0),
    ],
)
def test_median(case: str, values: list[float], expected: float | None) -> None:
    assert median(values) == expected


@pytest.mark.parametrize(
    "case, moment, monday",
    [
        (
            "the last minute of a Sunday belongs to the week begun that Monday",
            datetime(2026, 11, 29, 23, 59),
            date(2026, 11, 23),
        ),
        ("midnight on Monday starts a new week", datetime(2026, 11, 30, 0, 0), date(2026, 11, 30)),
        ("a Monday date is its own week start", date(2026, 11, 30), date(2026, 11, 30)),
        ("a Wednesday", date(2026, 11, 25), date(2026, 11, 23)),
        ("new year's day 2026, a Thursday, is in the week begun in 2025", date(2026, 1, 1), date(2025, 12, 29)),
        ("a naive datetime is read as UTC", datetime(2026, 1, 1, 12, 0), date(2025, 12, 29)),
        # 00:30 on Monday at UTC+2 is 22:30 on Sunday in UTC
        (
            "an aware datetime is moved to UTC first",
            datetime(2026, 11, 30, 0, 30, tzinfo=timezone(timedelta(hours=2))),
            date(2026, 11, 23),
        ),
        # 23:30 on Sunday at UTC-5 is 04:30 on Monday in UTC
        (
            "a late Sunday west of Greenwich is already Monday in UTC",
            datetime(2026, 11, 29, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
            date(2026, 11, 30),
        ),
        ("UTC itself", datetime(2026, 11, 29, 23, 59, tzinfo=UTC), date(2026, 11, 23)),
    ],
)
def test_iso_week_start(case: str, moment: date | datetime, monday: date) -> None:
    assert iso_week_start(moment) == monday
    assert monday.weekday() == 0


@pytest.mark.parametrize(
    "case, today, count, mondays",
    [
        (
            "three weeks ending in the week of new year's day, oldest first",
            date(2026, 1, 1),
            3,
            [date(2025, 12, 15), date(2025, 12, 22), date(2025, 12, 29)],
        ),
        (
            "across the year boundary into the first full week of the new year",
            date(2026, 1, 7),
            3,
            [date(2025, 12, 22), date(2025, 12, 29), date(2026, 1, 5)],
        ),
        (
            # 2026 starts on a Thursday, so it has an ISO week 53: Monday 28 December 2026 to Sunday 3 January 2027
            "ISO week 53 reaches into January",
            date(2027, 1, 3),
            2,
            [date(2026, 12, 21), date(2026, 12, 28)],
        ),
        ("one week is the current week", date(2026, 11, 29), 1, [date(2026, 11, 23)]),
        ("no weeks", date(2026, 11, 29), 0, []),
    ],
)
def test_weeks_ending(case: str, today: date, count: int, mondays: list[date]) -> None:
    assert weeks_ending(today, count) == mondays


def test_weeks_ending_gives_consecutive_mondays() -> None:
    weeks = weeks_ending(date(2026, 3, 4), 52)
    assert len(weeks) == 52
    assert all(week.weekday() == 0 for week in weeks)
    assert all(later - earlier == timedelta(weeks=1) for earlier, later in itertools.pairwise(weeks))
    assert weeks[-1] == date(2026, 3, 2)
