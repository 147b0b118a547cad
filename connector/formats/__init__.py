"""Reading and writing the delimited files that import and export goals exchange."""

from connector.formats.reader import DelimitedReader, Row, RowProblem, iter_decoded
from connector.formats.values import ConversionError, ValueType, add_numbers, make_converter
from connector.formats.writer import DelimitedWriter, format_date, format_number

__all__ = [
    "ConversionError",
    "DelimitedReader",
    "DelimitedWriter",
    "Row",
    "RowProblem",
    "ValueType",
    "add_numbers",
    "format_date",
    "format_number",
    "iter_decoded",
    "make_converter",
]
