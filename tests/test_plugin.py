"""The pytest plugin's gatekeeping, run on throw-away test files with `pytester`:
the requirement coverage gate, unknown requirement ids, bad `--spec` files, and the
skips of operator / emulator-only / destructive tests. None of these may open the rig:
they all happen at collection or setup, before a fixture starts the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from verification.spec import SPECS_DIR, load_spec

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
LUMBAR_RIG = REPO / "rigs" / "emulated-lumbar.yaml"
BENCH_RIG = REPO / "rigs" / "bench-example.yaml"
#: in-process runs: labgrid's pytest plugin keeps global state and cannot run twice in one process.
#: Paths go with "=" (--rig=PATH): a separate path argument would take part in pytest's rootdir
#: search and make this repository (its pyproject.toml) the inner run's rootdir and ini.
INNER = ("-p", "no:cacheprovider", "-p", "no:labgrid")


def small_spec(directory: Path, ids: list[str], name: str = "small-spec.yaml", mutate=None) -> Path:
    """The lumbar specification cut down to `ids` (the plan stays: the schema needs it)."""
    data = yaml.safe_load((SPECS_DIR / "lumbar.yaml").read_text(encoding="utf-8"))
    data["name"] = "small"
    data["requirements"] = [r for r in data["requirements"] if r["id"] in ids]
    if mutate:
        mutate(data)
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def run(pytester):
    """Run pytest in-process on the pytester directory, with a run directory of its own
    (that must stay absent: nothing here may open the rig)."""
    runs = pytester.path / "runs"

    def go(*args):
        result = pytester.runpytest(f"--run-dir={runs}", *INNER, "--strict-markers", *args)
        result.rig_opened = runs.exists()
        return result

    return go


def error_lines(result) -> list[str]:
    return [line for line in result.errlines + result.outlines if line.startswith("ERROR:")]


# ---------------------------------------------------------------- (a) coverage gate
def test_coverage_gate_fails_collection_naming_the_missing_requirements(pytester, run):
    pytester.makepyfile(test_traced="""
        import pytest

        @pytest.mark.requirement("FA-STATIC")
        def test_static(bench):
            raise AssertionError("must not run: the gate stops collection")
    """)
    result = run(f"--rig={LUMBAR_RIG}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR == 4
    lines = error_lines(result)
    assert len(lines) == 1, result.errlines
    missing = [r for r in load_spec("lumbar").ids if r != "FA-STATIC"]
    assert lines[0].startswith(f"ERROR: coverage gate: requirement {missing[0]} (")
    assert "of specification lumbar has no test that verifies it" in lines[0]
    for rid in missing[1:]:
        assert rid in lines[0]
    assert "FA-STATIC" not in lines[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not result.rig_opened


def test_coverage_gate_with_a_small_spec(pytester, run):
    spec = small_spec(pytester.path, ["FA-STATIC", "RA-RATE", "ER-LATCH"])
    pytester.makepyfile(test_traced="""
        import pytest

        @pytest.mark.requirement("FA-STATIC", "RA-RATE")
        def test_two(): pass
    """)
    result = run(f"--spec={spec}", "--collect-only")
    assert result.ret == 4
    (line,) = error_lines(result)
    assert "requirement ER-LATCH (Restart refused until RESET after an emergency release) of specification small" in line
    assert "(and" not in line  # exactly one missing
    assert not result.rig_opened


def test_coverage_gate_passes_when_every_requirement_has_a_test(pytester, run):
    spec = small_spec(pytester.path, ["FA-STATIC", "RA-RATE", "ER-LATCH"])
    pytester.makepyfile(test_traced="""
        import pytest

        @pytest.mark.requirement("FA-STATIC")
        def test_one(): pass

        @pytest.mark.requirement("RA-RATE", "ER-LATCH")
        def test_two(): pass

        @pytest.mark.requirement("ER-LATCH")
        class TestLatch:
            def test_class_marker(self): pass
    """)
    result = run(f"--spec={spec}")
    result.assert_outcomes(passed=3)
    assert not result.rig_opened  # the tests do not use the rig: it stays closed


def test_coverage_gate_uses_the_rig_files_spec_without_spec_option(pytester, run):
    pytester.makepyfile(test_traced="""
        import pytest

        @pytest.mark.requirement("FA-STATIC")
        def test_static(): pass
    """)
    cervical = run(f"--rig={REPO / 'rigs' / 'emulated-cervical.yaml'}", "--collect-only")
    assert cervical.ret == 4
    assert "of specification cervical has no test" in error_lines(cervical)[0]


# ---------------------------------------------------------------- (b) unknown requirement
def test_unknown_requirement_id_fails_collection_naming_it(pytester, run):
    pytester.makepyfile(test_typo="""
        import pytest

        @pytest.mark.requirement("FA-STATIC")
        def test_static(): pass

        @pytest.mark.requirement("FA-STATC")
        def test_typo(): pass
    """)
    result = run(f"--rig={LUMBAR_RIG}", "--collect-only")
    assert result.ret == 4
    (line,) = error_lines(result)
    assert line == (
        f"ERROR: test_typo.py::test_typo: requirement FA-STATC is not in specification lumbar "
        f"({SPECS_DIR / 'lumbar.yaml'})"
    )
    assert not result.rig_opened


# ---------------------------------------------------------------- (c) untraced tests
def test_tests_without_requirement_markers_are_not_gated(pytester, run):
    pytester.makepyfile(test_plain="""
        import pytest

        def test_a(): pass

        @pytest.mark.parametrize("x", [1, 2])
        def test_b(x): pass
    """)
    collected = run(f"--rig={LUMBAR_RIG}", "--collect-only")
    assert collected.ret == 0
    collected.stdout.fnmatch_lines([f"rootdir: {pytester.path}"])  # not this repository
    collected.stdout.fnmatch_lines(["*3 tests collected*"])
    result = run(f"--rig={LUMBAR_RIG}")
    result.assert_outcomes(passed=3)
    assert not result.rig_opened


def test_gate_ignores_a_bad_spec_when_nothing_is_traced(pytester, run, tmp_path):
    # the spec is only read when a traced test or the rig needs it
    bad = small_spec(tmp_path, ["FA-STATIC"], mutate=lambda d: d.update(bogus=1))
    pytester.makepyfile(test_plain="def test_a(): pass")
    run(f"--spec={bad}").assert_outcomes(passed=1)


# ---------------------------------------------------------------- (d) bad --spec
def test_bad_spec_file_is_one_line_usage_error(pytester, run, tmp_path):
    bad = small_spec(tmp_path, ["FA-STATIC"], "bad-spec.yaml",
                     mutate=lambda d: d["requirements"][0].update(upper="max(0.05 * settting, 10)"))
    pytester.makepyfile(test_traced="""
        import pytest

        @pytest.mark.requirement("FA-STATIC")
        def test_static(): pass
    """)
    result = run(f"--spec={bad}")
    assert result.ret == 4
    (line,) = error_lines(result)
    assert line.startswith(f"ERROR: {bad}: requirements.0.upper (FA-STATIC): unknown variable settting")
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "pydantic" not in result.stdout.str() + result.stderr.str()
    assert not result.rig_opened


def test_missing_spec_file_is_one_line_usage_error(pytester, run, tmp_path):
    pytester.makepyfile(test_traced="""
        import pytest

        @pytest.mark.requirement("FA-STATIC")
        def test_static(): pass
    """)
    result = run(f"--spec={tmp_path / 'nope.yaml'}")
    assert result.ret == 4
    (line,) = error_lines(result)
    assert "nope.yaml: cannot read specification" in line and "built-in: cervical, lumbar" in line


def test_bad_spec_stops_the_session_before_the_rig_opens(pytester, run, tmp_path):
    # untraced, but the rig needs the specification (watchdog period): one line, exit 2,
    # and the emulator is never started
    bad = small_spec(tmp_path, ["FA-STATIC"], "bad-spec.yaml", mutate=lambda d: d["plan"].update(watchdog_s=0))
    pytester.makepyfile(test_rig="""
        def test_uses_rig(rig):
            raise AssertionError("must not run")
    """)
    result = run(f"--rig={LUMBAR_RIG}", f"--spec={bad}")
    assert result.ret == 2
    text = result.stdout.str() + result.stderr.str()
    assert f"rig: {bad}: plan.watchdog_s: Input should be greater than 0" in text
    assert "must not run" not in text
    assert not result.rig_opened


# ---------------------------------------------------------------- (e) skips
OPERATOR_TEST = """
    import pytest

    @pytest.mark.operator
    def test_needs_a_person(bench):
        raise AssertionError("must not run without a person")
"""


def run_operator(pytester, *, terminal: bool, ci: bool, source: str = OPERATOR_TEST) -> subprocess.CompletedProcess:
    """The operator test in a child pytest (output captured, as always): at a terminal (a
    pseudo-terminal that is the child's controlling terminal, as at the bench: pexpect) or
    with none at all (a session of its own, stdin /dev/null). The prompts use /dev/tty, so
    capture does not matter; only CI or a missing controlling terminal skip."""
    import pexpect

    pytester.makepyfile(test_operator=source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "1"
    cmd = [sys.executable, "-m", "pytest", "test_operator.py", "-rs", "-p", "no:cacheprovider",
           f"--rig={LUMBAR_RIG}", f"--run-dir={pytester.path / 'runs'}"]
    if terminal:
        out, status = pexpect.run(cmd[0], args=cmd[1:], cwd=str(pytester.path), env=env, withexitstatus=True,
                                  timeout=60, encoding="utf-8", dimensions=(40, 200))
        return subprocess.CompletedProcess(cmd, status, out, "")
    return subprocess.run(cmd, cwd=pytester.path, env=env, stdin=subprocess.DEVNULL, start_new_session=True,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("terminal, ci, reason", [
    (True, True, "needs a person at the bench: CI is set"),
    (False, False, "needs a person at the bench: no controlling terminal (/dev/tty: "),
], ids=["CI-at-a-terminal", "no-terminal"])
def test_operator_test_skipped_on_ci_or_without_a_terminal(pytester, terminal, ci, reason):
    proc = run_operator(pytester, terminal=terminal, ci=ci)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 skipped" in proc.stdout
    assert reason in proc.stdout
    assert "must not run" not in proc.stdout
    assert not (pytester.path / "runs").exists()  # skipped before the bench fixture opened the rig


def test_operator_test_skipped_on_ci_in_process(pytester, run, monkeypatch):
    monkeypatch.setenv("CI", "1")
    pytester.makepyfile(test_operator=OPERATOR_TEST)
    result = run(f"--rig={LUMBAR_RIG}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*needs a person at the bench: CI is set*"])
    assert not result.rig_opened


def test_operator_test_runs_at_a_terminal(pytester):
    # the positive case: a controlling terminal, no CI; pytest captures output as usual
    proc = run_operator(pytester, terminal=True, ci=False, source="""
        import pytest

        @pytest.mark.operator
        def test_needs_a_person():
            pass
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_emulator_only_and_destructive_skipped_on_a_real_bench(pytester, run):
    pytester.makepyfile(test_bench="""
        import pytest

        @pytest.mark.emulator_only
        def test_side_channel(rig): raise AssertionError("must not run")

        @pytest.mark.destructive
        def test_breaks_things(rig): raise AssertionError("must not run")
    """)
    result = run(f"--rig={BENCH_RIG}", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([
        "*needs the emulated table's side channels; this rig is a real bench*",
        "*destructive on a real bench: pass --destructive to run it*",
    ])
    assert not result.rig_opened  # and nothing tried to reach the bench's addresses


def test_markers_are_registered(pytester):
    result = pytester.runpytest(*INNER, "--markers")
    result.stdout.fnmatch_lines([
        "@pytest.mark.requirement(*ids)*",
        "@pytest.mark.destructive*",
        "@pytest.mark.operator*",
        "@pytest.mark.emulator_only*",
    ])


def test_rig_options_documented_in_help(pytester):
    result = pytester.runpytest(*INNER, "--help")
    result.stdout.fnmatch_lines(["*traction-rig*", "*--rig=FILE*", "*--lg-env*", "*--spec=SPEC*", "*--run-dir=RUN_DIR*"])


def test_helper_small_spec_is_valid(tmp_path):
    spec = load_spec(small_spec(tmp_path, ["FA-STATIC", "ER-LATCH"]))
    assert spec.ids == ["FA-STATIC", "ER-LATCH"] and spec.name == "small"


# ---------------------------------------------------------------- --requirements
def test_requirements_option_keeps_only_the_tests_of_those_requirements(pytester, run):
    """`--requirements` (the fault matrix's --focus) selects by the requirement markers after
    the coverage gate has judged the suites as written; a quantity id selects its requirement."""
    spec = load_spec("lumbar")
    body = "import pytest\n" + "".join(
        f"\n@pytest.mark.requirement({r.id!r})\ndef test_{r.id.replace('-', '_').lower()}(): pass\n"
        for r in spec.requirements)
    pytester.makepyfile(test_all=body)
    result = run(f"--rig={LUMBAR_RIG}", "--collect-only", "--requirements", "IL-RESET,ER-NORISE.rise")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*test_il_reset*", "*test_er_norise*"])
    result.stdout.fnmatch_lines([f"*2/{len(spec.requirements)} tests collected ({len(spec.requirements) - 2} deselected)*"])


def test_the_runs_state_is_one_typed_plugin_in_the_stash(pytester):
    """The session's run state (item 4 of issue 24): a RunState under the config's stash key,
    registered as a plugin under its name; what the session chose and planned is on it, and
    nothing opened the rig."""
    from fixtures.plugin import RUN_STATE, RunState, rig_config, spec_of

    pytester.makepyfile(test_x="""
        import pytest

        @pytest.mark.requirement("FA-STATIC")
        def test_a():
            pass
    """)
    spec = small_spec(pytester.path, ["FA-STATIC"])
    reprec = pytester.inline_run(f"--run-dir={pytester.path / 'runs'}", *INNER, f"--rig={LUMBAR_RIG}",
                                 f"--spec={spec}")
    reprec.assertoutcome(passed=1)
    config = reprec.getcall("pytest_sessionfinish").session.config
    state = RunState.of(config)
    assert type(state) is RunState and config.stash[RUN_STATE] is state
    assert config.pluginmanager.get_plugin(RunState.NAME) is state
    assert state.plan == [{"test": "test_x.py::test_a", "requirements": ["FA-STATIC"]}]
    assert rig_config(config) is state.rig and state.rig.name == "emulated-lumbar"
    assert spec_of(config) is state.spec and state.spec.name == "small"
    assert state.session is None and state.open_error is None and state.failures == []
    assert not (pytester.path / "runs").exists()
