"""The safety suites: every force is measured with the reference gauge."""
