"""Root conftest: loads the traction-rig plugin when the package is not installed
(installed, the `pytest11` entry point has already registered it under this name)."""

pytest_plugins = ["fixtures.plugin"]
