"""The report's statistics against values published elsewhere, and a small cohort by hand.

Published references:
- Kaplan-Meier: Freireich et al. (1963) 6-MP remission data, as worked in Kleinbaum & Klein,
  "Survival Analysis: A Self-Learning Text" (3rd ed., ch. 2): S(6)=0.857, S(7)=0.807,
  S(10)=0.753, S(13)=0.690, S(16)=0.627, S(22)=0.538, S(23)=0.448; the log(-log) 95 % limits at
  day 6, 0.620-0.952, are R survival's ``survfit(conf.type = "log-log")`` output.
- Wilson interval: Newcombe (1998), Stat Med 17:857, Table I, method 3: 81/263 -> 0.2553-0.3662,
  15/148 -> 0.0624-0.1605, 0/20 -> 0-0.1611, 1/29 -> 0.0061-0.1718.
- t interval and Welch: Student's sleep data (Cushny & Peebles 1905), R's ``t.test`` examples:
  paired differences mean 1.58, 95 % CI 0.7001-2.4599; Welch two-sample t, df 17.776,
  95 % CI of the difference -3.3655 to 0.2055.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from backend.research import stats
from backend.research.stats import Observation, TimePoint

# Freireich 6-MP group: remission weeks; 0 = censored.
SIX_MP_WEEKS = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
SIX_MP_RELAPSE = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
SLEEP_DRUG_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_DRUG_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_kaplan_meier_gives_the_published_6mp_remission_estimates():
    days = [6, 7, 10, 13, 16, 22, 23]
    curve = stats.kaplan_meier(SIX_MP_WEEKS, [bool(e) for e in SIX_MP_RELAPSE], days)
    published = [0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448]
    assert [round(p["estimate"], 3) for p in curve] == published
    assert (round(curve[0]["low"], 3), round(curve[0]["high"], 3)) == (0.620, 0.952)
    assert [p["at_risk"] for p in curve] == [21, 17, 15, 12, 11, 7, 6]


def test_kaplan_meier_stops_reporting_the_curve_when_fewer_than_five_are_at_risk():
    curve = stats.kaplan_meier(SIX_MP_WEEKS, [bool(e) for e in SIX_MP_RELAPSE], [25, 32, 34])
    assert [p["at_risk"] for p in curve] == [5, "<5", "<5"]
    assert curve[0]["estimate"] is not None
    assert curve[1]["estimate"] is None and curve[2]["low"] is None


def test_wilson_interval_matches_newcombe_1998():
    for k, n, low, high in [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ]:
        p = stats.wilson(k, n)
        assert (round(p.low, 4), round(p.high, 4)) == (low, high), (k, n)


def test_t_interval_of_the_mean_matches_students_sleep_data():
    differences = [b - a for a, b in zip(SLEEP_DRUG_1, SLEEP_DRUG_2, strict=True)]
    estimate = stats.mean_ci(differences)
    assert round(estimate.mean, 2) == 1.58
    assert (round(estimate.low, 4), round(estimate.high, 4)) == (0.7001, 2.4599)


def test_welch_difference_matches_r_t_test_on_the_sleep_data():
    diff = stats.welch_difference(SLEEP_DRUG_2, SLEEP_DRUG_1)  # drug 1 minus drug 2
    assert round(diff.difference, 2) == -1.58
    assert round(diff.df, 3) == 17.776
    assert (round(diff.low, 4), round(diff.high, 4)) == (-3.3655, 0.2055)


def test_cumulative_incidence_by_hand_with_death_competing():
    # Six patients (days, code): loosening 10, death 10, loosening 20, censored 25, death 30,
    # censored 40; plus four censored at 50 so at least five are at risk on the days read.
    durations = [10, 10, 20, 25, 30, 40, 50, 50, 50, 50]
    codes = [1, 2, 1, 0, 2, 0, 0, 0, 0, 0]
    # By hand (Aalen-Johansen): day 10: 10 at risk, 1 loosening and 1 death:
    #   CIF = 1 * 1/10 = 0.1; overall survival S = 8/10.
    # Day 20: 8 at risk, 1 loosening: CIF = 0.1 + 0.8 * 1/8 = 0.2; S = 0.8 * 7/8 = 0.7.
    # Day 30: 6 at risk (25 censored), a death: CIF unchanged 0.2.
    cif = stats.cumulative_incidence(durations, codes, [9, 10, 20, 30, 45])
    estimates = [None if p["estimate"] is None else round(p["estimate"], 6) for p in cif]
    assert estimates == [0.0, 0.1, 0.2, 0.2, None]
    assert [p["at_risk"] for p in cif] == [10, 10, 8, 6, "<5"]
    # Kaplan-Meier treats the deaths as censored: 1 - 9/10 * 7/8 = 0.2125 at day 20, i.e.
    # it overstates the incidence once deaths compete (0.2125 > 0.2).
    km = stats.kaplan_meier(durations, [c == 1 for c in codes], [20])
    assert round(1 - km[0]["estimate"], 4) == 0.2125


def test_tied_days_give_the_same_curve_every_time():
    durations = [5, 5, 5, 5, 5, 8, 8, 9, 9, 9, 12, 12]
    codes = [1, 2, 0, 1, 0, 1, 0, 2, 1, 0, 0, 0]
    first = stats.cumulative_incidence(durations, codes, [5, 9])
    assert all(stats.cumulative_incidence(durations, codes, [5, 9]) == first for _ in range(5))
    # Day 5: 12 at risk, 2 loosening: 2/12 (events counted before the censorings of that day).
    assert round(first[0]["estimate"], 6) == round(2 / 12, 6)


WINDOW = TimePoint("month_1", 30, 21, 45)


def obs(day, **values):
    return Observation(day, values)


def test_the_response_closest_to_the_target_day_counts_and_missing_is_never_imputed():
    history = [obs(20, pain_walking=9), obs(26, pain_walking=4), obs(33, pain_walking=2)]
    assert stats.select_value(history, WINDOW, "pain_walking") == (33, 2.0)
    assert (
        stats.select_value(
            [obs(20, pain_walking=1), obs(46, pain_walking=1)], WINDOW, "pain_walking"
        )
        is None
    )


def test_a_tie_in_distance_goes_to_the_earlier_answer():
    assert stats.select_value(
        [obs(35, pain_walking=5), obs(25, pain_walking=7)], WINDOW, "pain_walking"
    ) == (25, 7.0)


def test_the_mobility_score_comes_from_the_closest_follow_up_even_if_a_checkin_is_closer():
    history = [
        obs(30, pain_walking=3, mobility_score=None),
        obs(40, pain_walking=2, mobility_score=6),
    ]
    assert stats.select_value(history, WINDOW, "mobility_score") == (40, 6.0)


def test_responders_improve_by_two_points_and_thirty_percent():
    assert stats.is_responder(8, 5)  # 3 points, 37.5 %
    assert not stats.is_responder(8, 6)  # 2 points but 25 %
    assert stats.is_responder(6, 4)  # 2 points, 33 %
    assert not stats.is_responder(1, 0)  # 1 point
    assert not stats.is_responder(0, 0)


def test_small_cells_show_less_than_five_and_hide_their_statistics():
    assert stats.mean_ci([1.0, 2.0, 3.0, 4.0]).as_dict() == {
        "n": "<5",
        "mean": None,
        "low": None,
        "high": None,
    }
    assert stats.mean_ci([1.0, 2.0, 3.0, 4.0, 5.0]).as_dict()["mean"] == 3.0
    assert stats.masked_count(0) == 0
    # 18 responders of 20: the 2 non-responders would be given away by n and k.
    assert stats.wilson(18, 20).as_dict()["share"] is None
    assert stats.wilson(10, 20).as_dict()["share"] == 0.5
    assert stats.welch_difference([1, 2, 3, 4, 5], [1, 2, 3, 4]).as_dict()["difference"] is None


def test_importing_the_app_loads_no_statistics_plotting_or_parquet_library():
    code = (
        "import sys\n"
        "from backend import create_app\n"
        "create_app({'APP_ENV': 'testing', 'SECRET_KEY': 'x' * 40, "
        "'DATABASE_URL': 'sqlite://'})\n"
        "heavy = [m for m in ('scipy', 'lifelines', 'matplotlib', 'pyarrow', 'pandas', 'numpy')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_values_give_no_interval(n):
    estimate = stats.mean_ci([3.0] * n)
    assert estimate.low is None and estimate.high is None
