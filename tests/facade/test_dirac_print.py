"""DIRAC's printTable layout, reproduced for Dirac's printOutput=True."""

from __future__ import annotations

from aiodirac._dirac_print import format_table, summary_file


def test_table_aligns_numbers_right_and_text_left() -> None:
    records = [["JobManager", "12"], ["Agent", "3"]]
    assert format_table(["Source", "N"], records, column_separator="  ") == (
        "Source      N\n"
        "================\n"  # every width plus one separator per column
        "JobManager  12\n"
        "Agent        3\n"
    )


def test_single_space_separator_rules_the_header_only() -> None:
    assert format_table(["Source", "N"], [["JobManager", "12"]]) == (
        "Source     N\n============\nJobManager 12\n"
    )


def test_cells_are_stripped_and_empty_tables_say_so() -> None:
    assert format_table([" A "], [["  x  "]]) == "A\n=\nx\n"  # the rule is as long as the header
    assert format_table(["A"], []) == "No output"


def test_summary_file_columns() -> None:
    text = summary_file(["Status"], {7: {"Status": "Done"}})
    assert (
        text
        == "JobID".ljust(12) + "Status".ljust(35) + "\n" + "7".ljust(12) + "Done".ljust(35) + "\n"
    )
