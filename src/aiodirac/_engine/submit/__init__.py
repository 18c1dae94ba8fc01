"""Submission: the two-phase exactly-once submitter, its configuration and its report."""
