"""Protection of children's data (issue 9): the caller's scope carried into the database (row-level
security), and the record of access (audit log)."""
