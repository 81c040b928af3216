"""Safety specifications as data: the built-in files load, their limit formulas evaluate,
and a bad file is refused with one line naming the file, the key and the requirement."""

from __future__ import annotations

import copy
import math

import pytest
import yaml

from drivers.errors import ConfigError
from verification.formula import Formula
from verification.spec import FORMULA_VARIABLES, SPECS_DIR, Specification, load_spec


# ---------------------------------------------------------------- built-in specifications
@pytest.mark.parametrize("name", ["lumbar", "cervical"])
def test_builtin_spec_loads_with_traceable_requirements(name):
    spec = load_spec(name)
    assert isinstance(spec, Specification)
    assert spec.name == name and spec.kind == name
    assert spec.source == SPECS_DIR / f"{name}.yaml"
    assert spec.requirements
    assert len(set(spec.ids)) == len(spec.ids)
    for r in spec.requirements:
        assert r.id and r.source.strip() and r.quantity.strip(), r.id
        if r.decision_rule == "guard-banded":
            assert r.upper is not None or r.lower is not None, r.id
            assert r.unit, r.id
        assert r.rule_text  # the decision rule is quoted with every measurement
        # every limit evaluates with every variable a formula may use
        low, high = r.limits(**{v: 100.0 for v in FORMULA_VARIABLES})
        for limit in (low, high):
            assert limit is None or math.isfinite(limit)
    # the plan stays inside the table's ratings
    assert max(spec.plan.setpoints_n) <= spec.rated_force_n
    assert max(spec.plan.ramp_rates_n_s) <= spec.max_ramp_rate_n_s


def test_spec_by_path_equals_spec_by_name():
    assert load_spec(SPECS_DIR / "lumbar.yaml") == load_spec("lumbar")


@pytest.mark.parametrize(
    "name, rid, variables, expected",
    [
        ("lumbar", "FA-STATIC", {"setting": 100.0}, (None, 10.0)),  # max(5 %, 10 N): 10 N floor
        ("lumbar", "FA-STATIC", {"setting": 400.0}, (None, 20.0)),  # 5 % of 400 N
        ("lumbar", "FA-STATIC", {"setting": 200.0}, (None, 10.0)),  # the corner
        ("cervical", "FA-STATIC", {"setting": 50.0}, (None, 5.0)),  # cervical floor is 5 N
        ("cervical", "FA-STATIC", {"setting": 200.0}, (None, 10.0)),
        ("lumbar", "RA-RATE", {"rate": 25.0}, (None, 2.5)),
        ("lumbar", "IM-TIMING", {"setting": 8.0}, (None, 0.5)),
        ("lumbar", "IM-TIMING", {"setting": 99.0}, (None, 0.99)),
        ("lumbar", "ER-RESIDUAL", {}, (None, 3.0)),  # a plain number is a formula too
        ("lumbar", "ER-SNAP", {}, (0.05, None)),
    ],
)
def test_limit_formulas_evaluate(name, rid, variables, expected):
    got = load_spec(name).requirement(rid).limits(**variables)
    for value, want in zip(got, expected):
        if want is None:
            assert value is None
        else:
            assert value == pytest.approx(want)


def test_limit_formula_without_its_variable_says_which():
    with pytest.raises(ValueError, match="needs setting"):
        load_spec("lumbar").requirement("FA-STATIC").limits(rate=10.0)


def test_unknown_requirement_id_is_a_key_error_naming_it():
    with pytest.raises(KeyError, match="NO-SUCH"):
        load_spec("lumbar").requirement("NO-SUCH")


# ---------------------------------------------------------------- bad specification files
@pytest.fixture
def bad_spec(tmp_path):
    """Write a mutated copy of the lumbar specification; returns (path, load error)."""
    base = yaml.safe_load((SPECS_DIR / "lumbar.yaml").read_text(encoding="utf-8"))

    def make(mutate) -> tuple:
        data = copy.deepcopy(base)
        mutate(data)
        path = tmp_path / "bad-spec.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_spec(path)
        message = str(info.value)
        assert "\n" not in message, message  # one line, no pydantic dump
        assert message.startswith(f"{path}: "), message  # names the file first
        return path, message

    return make


def _req(data, rid):
    return next(r for r in data["requirements"] if r["id"] == rid)


def test_unknown_top_level_key(bad_spec):
    _, msg = bad_spec(lambda d: d.update(tolerances={"x": 1}))
    assert ": tolerances: " in msg


def test_unknown_key_in_a_requirement_names_the_requirement(bad_spec):
    _, msg = bad_spec(lambda d: _req(d, "RA-RATE").update(uper="0.1 * rate"))
    assert "requirements.2.uper" in msg and "(RA-RATE)" in msg


def test_unknown_key_in_the_plan(bad_spec):
    _, msg = bad_spec(lambda d: d["plan"].update(watchdog_ms=2000))
    assert "plan.watchdog_ms" in msg


def test_duplicate_requirement_id(bad_spec):
    _, msg = bad_spec(lambda d: d["requirements"].append(dict(_req(d, "FA-CELL"))))
    assert "FA-CELL" in msg and "twice" in msg


def test_formula_with_an_unknown_variable(bad_spec):
    _, msg = bad_spec(lambda d: _req(d, "RA-OVERSHOOT").update(upper="max(0.05 * settting, 10)"))
    assert "requirements.3.upper" in msg and "(RA-OVERSHOOT)" in msg
    assert "unknown variable settting" in msg
    assert "setting" in msg.split("allowed:")[1]  # says what is allowed


@pytest.mark.parametrize(
    "formula",
    [
        "__import__('os')",
        "__import__('os').system('true')",
        "(lambda: 1)()",
        "setting.__class__",
        "open('/etc/passwd')",
        "[x for x in ()]",
        "setting ** 2",
    ],
)
def test_formula_that_tries_code_is_refused(bad_spec, formula):
    _, msg = bad_spec(lambda d: _req(d, "FA-STATIC").update(upper=formula))
    assert "requirements.0.upper" in msg and "(FA-STATIC)" in msg
    assert "only numbers, names" in msg


def test_formula_that_does_not_parse(bad_spec):
    _, msg = bad_spec(lambda d: _req(d, "FA-STATIC").update(upper="max(0.05 *"))
    assert "(FA-STATIC)" in msg and "does not parse" in msg


def test_guard_banded_requirement_without_limits(bad_spec):
    _, msg = bad_spec(lambda d: _req(d, "RA-SETTLE").pop("upper"))
    assert "requirements.4" in msg and "(RA-SETTLE)" in msg
    assert "needs an upper or a lower limit" in msg


def test_boolean_requirement_needs_no_limits():
    spec = load_spec("lumbar")
    r = spec.requirement("IL-START")
    assert r.decision_rule == "boolean" and r.upper is None and r.lower is None
    assert r.limits() == (None, None)


def test_setpoint_above_rated(bad_spec):
    _, msg = bad_spec(lambda d: d["plan"]["setpoints_n"].append(900))
    assert "plan.setpoints_n" in msg and "rated_force_n" in msg


def test_rate_above_max(bad_spec):
    _, msg = bad_spec(lambda d: d["plan"]["ramp_rates_n_s"].append(60))
    assert "plan.ramp_rates_n_s" in msg and "max_ramp_rate_n_s" in msg


def test_requirement_id_pattern(bad_spec):
    _, msg = bad_spec(lambda d: _req(d, "FA-CELL").update(id="fa cell"))
    assert "requirements.1.id" in msg


def test_missing_file_lists_the_builtin_specs(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value) and "lumbar" in str(info.value) and "cervical" in str(info.value)


def test_unknown_builtin_name():
    with pytest.raises(ConfigError, match="no-such-table.*built-in: cervical, lumbar"):
        load_spec("no-such-table")


def test_not_yaml_and_not_a_mapping(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        load_spec(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping"):
        load_spec(listing)


# ---------------------------------------------------------------- formulas
@pytest.mark.parametrize(
    "text, variables, expected",
    [
        ("1 + 2 * 3", {}, 7.0),
        ("(1 + 2) * 3", {}, 9.0),
        ("10 / 4", {}, 2.5),
        ("-setting + 5", {"setting": 2.0}, 3.0),
        ("0.05 * setting", {"setting": 400.0}, 20.0),
        ("max(0.05 * setting, 10)", {"setting": 100.0}, 10.0),
        ("min(rate, 3, residual)", {"rate": 5.0, "residual": 4.0}, 3.0),
        ("abs(force - setting)", {"force": 90.0, "setting": 100.0}, 10.0),
        ("max(abs(-3), min(1, 2))", {}, 3.0),
        (12, {}, 12.0),
        (0.05, {}, 0.05),
    ],
)
def test_formula_arithmetic(text, variables, expected):
    f = Formula(text)
    assert f(**variables) == pytest.approx(expected)
    assert isinstance(f(**variables), float)


def test_formula_reports_its_names():
    assert Formula("max(0.05 * setting, rate) + setting").names == ["rate", "setting"]
    assert Formula("3").names == []


@pytest.mark.parametrize(
    "text",
    [
        "setting.real",  # attribute access
        "__import__('os')",  # calls of anything but min/max/abs
        "eval('1')",
        "max(1, key=abs)",  # keywords
        "max(*[1, 2])",
        "lambda: 1",
        "(lambda x: x)(1)",
        "'text'",  # only numbers
        "[1][0]",
        "1 if setting else 2",
        "setting ** 2",
        "setting % 3",
        "setting < 3",
        "setting.__class__.__bases__",
    ],
)
def test_formula_rejects_anything_but_arithmetic(text):
    with pytest.raises(ValueError, match="only numbers, names"):
        Formula(text)


def test_formula_syntax_error_is_a_value_error():
    with pytest.raises(ValueError, match="does not parse"):
        Formula("max(1,")
