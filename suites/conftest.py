"""The safety suites: every force is measured with the reference gauge."""


def pytest_addoption(parser):
    # an initial conftest whenever the suites are collected (`rig run` passes suites/,
    # `pytest suites/...`), so pytest calls this hook for it; the plugin's own options
    # are in fixtures/plugin.py
    parser.getgroup("traction-rig").addoption(
        "--operator-overforce", action="store_true",
        help="IL-OVERFORCE: also run the operator-assisted over-force trip (a person pulls the harness) on a rig "
             "that has a patient simulator; a real bench runs it anyway (it needs --destructive there)")


def pytest_collection_modifyitems(config, items):
    from fixtures.operator import bound_operator_tests

    bound_operator_tests(config, items)
