"""`rig run`'s exit status, one rule for `rig run` and the panel's banner (README, "Exit
status"): 0 only when every requirement of every run passed and pytest completed."""

from __future__ import annotations

import pytest

from drivers.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_NOT_CONFIRMED_SAFE, EXIT_OK, EXIT_USAGE
from reports.exit_status import rig_run_exit_status


@pytest.mark.parametrize("pytest_status, overall, options, expected", [
    (0, ["PASS"], {}, EXIT_OK),
    (0, ["PASS", "PASS"], {}, EXIT_OK),
    (0, ["INCONCLUSIVE"], {}, EXIT_FAILED),  # pytest's 0: the tests completed, not that they passed
    (0, ["PASS", "FAIL"], {}, EXIT_FAILED),
    (1, ["PASS"], {}, EXIT_FAILED),
    (0, [], {}, EXIT_FAILED),  # no run record was written
    (4, ["PASS"], {}, EXIT_NOT_CONFIRMED_SAFE),  # the plugin's status on an opened rig
    (4, [], {}, EXIT_USAGE),  # pytest's usage error: no rig was opened
    (2, ["PASS"], {}, EXIT_INTERRUPTED),
    (3, ["PASS"], {}, EXIT_FAILED),
    (2, [], {"open_error": True}, EXIT_USAGE),  # the plugin's own status when the rig did not open
    (0, ["PASS"], {"not_safe": True}, EXIT_NOT_CONFIRMED_SAFE),  # outweighs every verdict
])
def test_rig_run_exit_status(pytest_status, overall, options, expected):
    assert rig_run_exit_status(pytest_status, overall, **options) == expected
