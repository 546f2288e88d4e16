"""Tables that stay readable on an 80-column terminal or in a pipe.

Every column says whether it holds ids or numbers (``key``: never wrapped or cut, shown at
full width) and how readily it may go (``drop``: on a narrow console the highest ``drop`` is
removed first; 0 never). When the table is too wide, headers take their short form, then
columns are dropped, then the remaining free-text columns wrap at word boundaries.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    """One column of a :func:`fit_table`."""

    header: str
    key: bool = False  # ids and numbers: never wrapped or cut
    justify: Literal["left", "right", "center"] = "left"
    drop: int = 0  # 0: always shown; higher: dropped first when space is short
    short: str | None = None  # header when space is short


def cell_width(cell: str) -> int:
    """Printed width of a cell given as ``rich`` markup."""
    return max((Text.from_markup(line).cell_len for line in cell.splitlines()), default=0)


def _build(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    keep: Sequence[int],
    narrow: bool,
    title: str | None,
    options: dict[str, Any],
) -> Table:
    if narrow:  # no outer edge or vertical rules: two spaces between columns
        options = {
            "box": box.SIMPLE_HEAVY,
            "show_edge": False,
            "pad_edge": False,
            "collapse_padding": True,
        } | options
    table = Table(title=title, **options)
    for i in keep:
        col = columns[i]
        header = (col.short or col.header) if narrow else col.header
        if col.key:
            natural = max([cell_width(header), *(cell_width(r[i]) for r in rows)])
            table.add_column(header, justify=col.justify, no_wrap=True, min_width=natural)
        else:
            table.add_column(header, justify=col.justify, overflow="fold")
    for r in rows:
        table.add_row(*(r[i] for i in keep))
    return table


def _widths(table: Table) -> Measurement:
    """Narrowest and natural width of ``table`` (key columns count at full width)."""
    probe = Console(width=10_000, file=io.StringIO())
    return Measurement.get(probe, probe.options, table)


def fit_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    title: str | None = None,
    **table_options: Any,
) -> Table:
    """A :class:`rich.table.Table` of ``rows`` that fits ``width`` columns of text.

    Cells are ``rich`` markup: escape user-provided text before (:func:`agent.cli.console.esc`).
    """
    keep = list(range(len(columns)))
    table = _build(columns, rows, keep, False, title, table_options)
    if _widths(table).maximum <= width:
        return table
    while True:
        table = _build(columns, rows, keep, True, title, table_options)
        droppable = [i for i in keep if columns[i].drop > 0]
        if _widths(table).minimum <= width or not droppable:
            return table
        keep.remove(max(droppable, key=lambda i: (columns[i].drop, i)))


def num(value: float | None, digits: int = 2) -> str:
    """A number for a table: ``digits`` decimals, ``-`` for none, ``nan``/``inf`` spelled out."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}f}"


def seconds(value: float | None) -> str:
    """A duration for a table: 0.1 s resolution below a minute, then ``m:ss``."""
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes}:{rest:02d} min"
