"""The exit status `rig run` gives, stated once: `rig run` returns it and the panel's
banner shows it, so a page never passes pytest's own number (recorded in run-end) off
as the run's. pytest's 0 means the tests completed, whatever their verdicts; `rig run`
gives 0 only when every requirement passed (README, "Exit status").

It lives beside the verdicts rather than in rigcli/run.py because the panel (reports/)
must read it too, and reports never imports the command line.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest import ExitCode

from drivers.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_NOT_CONFIRMED_SAFE, EXIT_OK, EXIT_USAGE


def rig_run_exit_status(pytest_status: int, overall: Sequence[str], *, open_error: bool = False,
                        not_safe: bool = False) -> int:
    """`rig run`'s exit status: `pytest_status` is what pytest returned (or a run-end line
    recorded), `overall` each run's overall verdict (none: no run record was written),
    `open_error` whether the rig did not open (the plugin's status is then the answer),
    `not_safe` whether a record says TABLE NOT CONFIRMED SAFE."""
    if not_safe:
        return EXIT_NOT_CONFIRMED_SAFE
    if open_error:
        return pytest_status  # the plugin's: EXIT_USAGE for bad input, EXIT_FAILED for a device
    if pytest_status == ExitCode.USAGE_ERROR:  # also the plugin's EXIT_NOT_CONFIRMED_SAFE, set only on an opened rig
        return EXIT_NOT_CONFIRMED_SAFE if overall else EXIT_USAGE
    if pytest_status == ExitCode.INTERRUPTED:
        return EXIT_INTERRUPTED
    if pytest_status == ExitCode.INTERNAL_ERROR:
        return EXIT_FAILED
    if overall and all(v == "PASS" for v in overall) and pytest_status == ExitCode.OK:
        return EXIT_OK
    return EXIT_FAILED
