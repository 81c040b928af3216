"""The `rig` command: one entry point for test engineers and CI."""
