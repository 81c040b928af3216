"""Guard-banded verdicts (ILAC-G8), test uncertainty ratio and uncertainty budgets of
`verification.measurement.Measurement`. Every number here is checked by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from verification.measurement import TUR_MINIMUM, Measurement, Precondition, UncertaintyTerm, Verdict, expanded_uncertainty
from reports.rundir import closeness, limit_text, value_text
from verification.spec import Requirement, load_spec

PASS, FAIL, INCONCLUSIVE = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE


def requirement(rule: str = "guard-banded", **limits) -> Requirement:
    if rule == "guard-banded" and not limits:
        limits = {"upper": "max(0.05 * setting, 10)"}
    return Requirement(id="XX-TEST", title="a test requirement", source="(J) test", quantity="q",
                       unit="N", decision_rule=rule, **limits)


def u_of(expanded: float) -> list[UncertaintyTerm]:
    """A one-line budget whose expanded uncertainty (k=2) is exactly `expanded`."""
    return [UncertaintyTerm("one term", expanded / 2.0)]


def m(value, lower=None, upper=None, U=None, rule="guard-banded", **kw) -> Measurement:
    return Measurement("m", requirement(rule), value, "N", lower=lower, upper=upper,
                       budget=u_of(U) if U is not None else [], **kw)


# ---------------------------------------------------------------- verdicts
@pytest.mark.parametrize(
    "value, verdict",
    [
        (5.0, PASS),
        (9.0, PASS),  # value + U == upper: inside (inclusive)
        (9.5, INCONCLUSIVE),  # the interval 8.5 … 10.5 straddles 10
        (10.0, INCONCLUSIVE),
        (11.0, INCONCLUSIVE),  # value − U == upper: not yet outside
        (11.5, FAIL),  # 10.5 … 12.5 lies wholly above
        (-3.0, PASS),
    ],
)
def test_upper_limit(value, verdict):
    assert m(value, upper=10.0, U=1.0).verdict is verdict


@pytest.mark.parametrize(
    "value, verdict",
    [
        (7.0, PASS),
        (6.0, PASS),  # value − U == lower
        (5.5, INCONCLUSIVE),
        (4.0, INCONCLUSIVE),  # value + U == lower
        (3.9, FAIL),
    ],
)
def test_lower_limit(value, verdict):
    assert m(value, lower=5.0, U=1.0).verdict is verdict


@pytest.mark.parametrize(
    "value, verdict",
    [(5.0, PASS), (3.0, PASS), (7.0, PASS), (7.5, INCONCLUSIVE), (2.5, INCONCLUSIVE), (9.5, FAIL), (0.5, FAIL)],
)
def test_both_limits(value, verdict):
    assert m(value, lower=2.0, upper=8.0, U=1.0).verdict is verdict


def test_without_uncertainty_the_limit_itself_decides():
    assert m(10.0, upper=10.0).verdict is PASS
    assert m(10.001, upper=10.0).verdict is FAIL
    assert m(10.0, upper=10.0).uncertainty == 0.0


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, np.inf, np.float64("nan")])
def test_non_finite_value_fails(value):
    # e.g. a release that never fell below the residual force
    meas = m(value, upper=3.0, U=0.01)
    assert meas.verdict is FAIL
    assert meas.margin == -math.inf


def test_numpy_values_are_judged_like_floats():
    assert m(np.float64(9.0), upper=10.0, U=1.0).verdict is PASS
    assert m(np.float32(11.5), upper=10.0, U=1.0).verdict is FAIL


@pytest.mark.parametrize("value, verdict, text", [(True, PASS, "holds"), (False, FAIL, "VIOLATED")])
def test_boolean_rule(value, verdict, text):
    meas = Measurement("refused", requirement("boolean"), value, budget=u_of(5.0))
    assert meas.verdict is verdict
    assert meas.tur is None and not meas.tur_flag  # an observed behaviour has no TUR
    assert limit_text(meas.to_dict()) == "must hold"
    assert value_text(meas.to_dict()) == text
    # a held boolean is never the closest to its limit; a violated one is beyond it
    assert meas.margin == (math.inf if value else -1.0)


def test_worst_verdict():
    assert Verdict.worst([]) is PASS
    assert Verdict.worst([PASS, PASS]) is PASS
    assert Verdict.worst([PASS, INCONCLUSIVE]) is INCONCLUSIVE
    assert Verdict.worst([INCONCLUSIVE, FAIL, PASS]) is FAIL


def test_limits_from_the_specification():
    req = load_spec("lumbar").requirement("FA-STATIC")
    _, upper = req.limits(setting=400.0)  # 20 N
    meas = Measurement("|error| at 400 N", req, 15.0, "N", upper=upper, budget=u_of(1.0))
    assert meas.verdict is PASS
    assert limit_text(meas.to_dict()) == "≤ 20 N"
    assert meas.tur == pytest.approx(20.0)


# ---------------------------------------------------------------- TUR
@pytest.mark.parametrize(
    "lower, upper, U, tur, flagged",
    [
        (None, 10.0, 1.0, 10.0, False),
        (None, 10.0, 2.5, 4.0, False),  # exactly 4:1 is acceptable
        (None, 10.0, 4.0, 2.5, True),
        (0.05, None, 0.01, 5.0, False),  # lower only: ER-SNAP style
        (0.05, None, 0.02, 2.5, True),
        (2.0, 8.0, 1.0, 3.0, True),  # both: half-span (8 − 2) / 2 = 3
        (2.0, 8.0, 0.5, 6.0, False),
    ],
)
def test_tur_is_tolerance_half_span_over_U(lower, upper, U, tur, flagged):
    meas = m(5.0, lower=lower, upper=upper, U=U)
    assert meas.tur == pytest.approx(tur)
    assert meas.tur_flag is flagged
    assert TUR_MINIMUM == 4.0


def test_no_tur_without_uncertainty_or_span():
    assert m(1.0, upper=10.0).tur is None
    assert m(1.0, lower=3.0, upper=3.0, U=1.0).tur is None
    assert not m(1.0, upper=10.0).tur_flag


# ---------------------------------------------------------------- uncertainty budget
def test_rectangular_and_expanded_terms():
    # rectangular: half-width / √3; expanded: U / k
    assert UncertaintyTerm.rectangular("r", 1.2).standard == pytest.approx(1.2 / math.sqrt(3))  # 0.69282
    assert UncertaintyTerm.rectangular("r", -1.2).standard == pytest.approx(0.69282, abs=1e-5)
    assert UncertaintyTerm.expanded("e", 1.0).standard == pytest.approx(0.5)
    assert UncertaintyTerm.expanded("e", 0.6, k=3.0).standard == pytest.approx(0.2)


def test_expanded_uncertainty_k2_root_sum_of_squares():
    terms = [UncertaintyTerm.rectangular("resolution", 1.2), UncertaintyTerm.expanded("calibration", 1.0)]
    # u_c² = 1.2²/3 + (1.0/2)² = 0.48 + 0.25 = 0.73 ; U = 2 · √0.73 = 1.708801…
    assert expanded_uncertainty(terms) == pytest.approx(1.7088007490635062, rel=1e-12)
    assert expanded_uncertainty(terms, k=1.0) == pytest.approx(math.sqrt(0.73))
    # a gauge budget: cal U 0.5 (k=2), resolution 0.01 (half 0.005), noise of the mean 0.1
    gauge = [
        UncertaintyTerm.expanded("gauge calibration", 0.5, 2.0),  # 0.25
        UncertaintyTerm.rectangular("gauge resolution", 0.005),  # 0.0028868
        UncertaintyTerm("noise of the mean", 0.1),
    ]
    # 2 · √(0.0625 + 0.0000083333 + 0.01) = 2 · √0.0725083333 = 0.5385476…
    assert expanded_uncertainty(gauge) == pytest.approx(0.538548, abs=1e-6)
    meas = Measurement("x", requirement(), 1.0, "N", upper=10.0, budget=gauge)
    assert meas.uncertainty == pytest.approx(0.538548, abs=1e-6)
    assert expanded_uncertainty([]) == 0.0


# ---------------------------------------------------------------- texts and dict
def test_texts():
    assert value_text(m(3.14159, upper=10.0).to_dict()) == "3.142 N"
    assert limit_text(m(1.0, lower=2.0, upper=8.0).to_dict()) == "2 … 8 N"
    assert limit_text(m(1.0, lower=0.05).to_dict()) == "≥ 0.05 N"
    assert m(8.0, upper=10.0).margin == pytest.approx(0.2)
    assert m(12.0, upper=10.0).margin == pytest.approx(-0.2)
    # the margin is the negative of the closeness every view ranks by: one rule
    line = m(12.0, upper=10.0).to_dict()
    assert closeness(line) == pytest.approx(0.2)


def test_to_dict_round_trips_through_json():
    meas = Measurement(
        "|error| at 400 N",
        requirement(),
        np.float64(12.5),
        "N",
        upper=20.0,
        budget=[UncertaintyTerm.rectangular("resolution", 1.2), UncertaintyTerm.expanded("calibration", 1.0)],
        conditions={"setpoint_n": 400.0, "phase": "hold"},
        series={"t": np.arange(3.0), "force": np.ones(3)},
        annotations={"trigger_s": 1.25},
        note="settled 3 s",
    )
    d = meas.to_dict()
    back = json.loads(json.dumps(d))
    assert back == d
    assert back["value"] == 12.5 and type(d["value"]) is float
    assert back["requirement"] == "XX-TEST"
    assert back["uncertainty"] == pytest.approx(1.7088007490635062)
    assert back["coverage_factor"] == 2.0
    assert back["budget"] == [
        {"name": "resolution", "standard": pytest.approx(0.6928203230275509)},
        {"name": "calibration", "standard": 0.5},
    ]
    assert back["tur"] == pytest.approx(20.0 / 1.7088007490635062)
    assert back["tur_below_4"] is False
    assert back["verdict"] == "PASS" and back["decision_rule"] == "guard-banded"
    assert back["conditions"] == {"setpoint_n": 400.0, "phase": "hold"}
    assert "series" not in back  # written beside the record as CSV, not inline


def test_to_dict_boolean_keeps_the_bool():
    d = Measurement("refused", requirement("boolean"), False).to_dict()
    back = json.loads(json.dumps(d))
    assert back["value"] is False and back["verdict"] == "FAIL" and back["tur"] is None


def test_measurement_without_limits_or_value_formats_and_is_not_judged():
    """A check that found nothing to measure (plateaus missing, a capture cut short) records
    a measurement with no value and no limits: every output formats it and none judges it
    (issue 23: `Measurement.limit_text` crashed on it while writing an Allure step)."""
    meas = Measurement("hold and rest plateaus", requirement(), None, "N")
    assert limit_text(meas.to_dict()) == "—"
    assert value_text(meas.to_dict()) == "N/A"
    assert meas.verdict is Verdict.NOT_APPLICABLE
    assert meas.not_applicable == "no value was measured"
    assert meas.to_dict()["verdict"] == "N/A"
    with_reason = Measurement("x", requirement(), None, "N",
                              preconditions=[Precondition("plateaus found", False, "none")])
    assert with_reason.not_applicable.startswith("plateaus found: not so")
