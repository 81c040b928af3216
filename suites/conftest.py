"""The safety suites: every force is measured with the reference gauge."""


def pytest_collection_modifyitems(config, items):
    from fixtures.operator import bound_operator_tests

    bound_operator_tests(config, items)
