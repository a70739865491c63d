"""``msgbus schema``: export the JSON Schemas and validate WLCG-text or JSON messages."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import click

from msgbus.errors import SchemaError
from msgbus.schema import (
    CONTENT_TYPES,
    DEFAULT_MAX_BYTES,
    DEFAULT_MESSAGE_CLASS,
    HEADER_CONTENT_TYPE,
    HEADER_MESSAGE_CLASS,
    MESSAGE_TYPES,
    decode_body,
    export_schemas,
)


@click.group()
def schema() -> None:
    """Message schema: export JSON Schemas, validate message files."""


@schema.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schemas"),
    show_default=True,
    help="Directory to write <messageClass>.json into.",
)
def export(out_dir: Path) -> None:
    """Write the JSON Schema of every message type."""
    for path in export_schemas(out_dir):
        click.echo(f"wrote {path}")


@schema.command()
@click.argument("source", type=click.File("rb"))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "wlcg", "json"]),
    default="auto",
    show_default=True,
    help="Input format; auto treats input starting with '{' or '[' as JSON.",
)
@click.option(
    "--type",
    "message_class",
    type=click.Choice(sorted(MESSAGE_TYPES)),
    default=DEFAULT_MESSAGE_CLASS,
    show_default=True,
    help="Message type (the messageClass header value).",
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_BYTES,
    show_default=True,
    help="Refuse input larger than this.",
)
def validate(source: BinaryIO, fmt: str, message_class: str, max_bytes: int) -> None:
    """Validate the messages in SOURCE (a file, or - for stdin).

    Prints one line per problem and exits 1 if any message is invalid (or none is
    found); prints a count and exits 0 when all are valid.
    """
    # One byte over the cap is enough to know the input is too large.
    body = source.read(max_bytes + 1)
    headers = {HEADER_MESSAGE_CLASS: message_class}
    if fmt != "auto":
        headers[HEADER_CONTENT_TYPE] = CONTENT_TYPES[fmt]
    results = decode_body(body, headers, max_bytes=max_bytes)
    # Standard input has no file name (or "<stdin>"): call it "-" as the user did.
    name = getattr(source, "name", None)
    if not isinstance(name, str) or name == "<stdin>":
        name = "-"
    problems = [f"{name}: {error}" for result in results for error in result.errors]
    valid = sum(1 for result in results if result.ok)
    for line in problems:
        click.echo(line)
    if problems:
        invalid = sum(1 for result in results if not result.ok and result.message_no is not None)
        # A MsgbusError, not click's Exit: the entry point turns it into exit status 1.
        if not invalid and not valid:
            raise SchemaError(f"{name}: cannot be read as {message_class} messages (see above)")
        raise SchemaError(
            f"{name}: {invalid} invalid and {valid} valid {message_class} message(s); "
            "fix the problems listed above"
        )
    click.echo(f"{name}: {valid} valid {message_class} message(s)")
