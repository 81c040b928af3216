"""The verification library the safety suites share: what a specification asks
(`spec`, `formula`), how a quantity is judged (`measurement`: value, unit, limits,
uncertainty, decision rule, preconditions), how a trace is read (`analysis`, `release`,
`overforce`), what the suites do to a table (`bench`, `steps`, `emergency`), and what a
plan costs and covers (`budget`, `coverage`).

It lives outside `suites/` so that the pytest plugin (`fixtures/`), the reports and the
`rig` command import a library, never a test folder; `suites/` keeps the specification
files and the test modules that use this library.
"""
