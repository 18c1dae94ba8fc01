"""What DIRAC's ``Dirac`` methods print with ``printOutput=True``, character for character.

DIRAC prints dictionaries with ``pprint.pformat`` and tables with its ``printTable``
(``DIRAC.Core.Utilities.PrettyPrint``): each column as wide as its widest cell, numbers
right-aligned and text left-aligned, columns separated by ``column_separator``, a ``=`` rule
under the header, the last column's trailing blanks stripped, then ``print`` adds a newline.
:func:`format_table` reproduces that for the flat string cells the job methods print; it
returns the text and the caller prints it (the ``Dirac`` facade, as DIRAC does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["format_table", "summary_file"]


def _is_number(value: str) -> bool:
    try:
        int("".join(value.split(",")))
    except ValueError:
        return False
    return True


def format_table(
    fields: Sequence[str], records: Sequence[Sequence[str]], column_separator: str = " "
) -> str:
    """DIRAC's ``printTable(fields, records, numbering=False, columnSeparator=...)`` text.

    Usage: ``print(format_table(["Source", "Status"], [["JobManager", "Received"]], "  "))``
    """
    if not records:
        return "No output"
    names = [f.strip() for f in fields]
    rows = [[cell.strip() for cell in record] for record in records]
    widths = [max([len(names[i])] + [len(row[i]) for row in rows]) for i in range(len(names))]

    def line(cells: Sequence[str]) -> str:
        out = ""
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            text = cell.rjust(width) if _is_number(cell) else cell.ljust(width)
            text += column_separator
            out += text.rstrip() if i == len(cells) - 1 else text
        return out

    header = line(names)
    rule_length = sum(widths) + len(column_separator) * len(names)
    if column_separator == " ":
        rule_length = len(header)
    body = "".join(line(row) + "\n" for row in rows)
    return f"{header}\n{'=' * rule_length}\n{body}"


def summary_file(headers: Sequence[str], summary: Mapping[int, Mapping[str, object]]) -> str:
    """The text ``getJobSummary(..., outputFile=...)`` writes: a ``JobID`` column 12 wide, then
    one column 35 wide per attribute (values written with ``str``: DIRAC's own ``ljust`` on a
    datetime value fails).

    Usage: ``Path("summary.txt").write_text(summary_file(SUMMARY_NAMES, summary))``
    """
    lines = ["JobID".ljust(12) + "".join(h.ljust(35) for h in headers)]
    for job_id, values in summary.items():
        lines.append(str(job_id).ljust(12) + "".join(str(values[h]).ljust(35) for h in headers))
    return "".join(line + "\n" for line in lines)
