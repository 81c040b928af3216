"""The results history: every run in a database (SQLite by default, PostgreSQL for a
shared lab), the trend of each requirement per table serial, and drift warnings.

The run directory stays the evidence; the database is an index of it that can always be
rebuilt by importing the run directories again (`rig history import`)."""
