"""The live bench panel: a browser page that follows a run while it happens.

It is a separate, niced process that only reads the run directory (record.jsonl,
live.jsonl, heartbeat.json) and appends the operator's answers to answers.jsonl, so
watching a run can never change its timing or what it measures (docs/panel-protocol.md).
`rig panel RUN_DIR` serves it for any run; `rig run --panel` starts one beside the suites.
"""
