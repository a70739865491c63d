"""Bytes to text for the codecs: the size cap and UTF-8 check, with positions."""

from __future__ import annotations

from msgbus.errors import DecodeError

__all__ = ["DEFAULT_MAX_BYTES", "check_size", "to_text"]

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
"""Largest body the codecs read unless told otherwise (16 MiB)."""

_BOM = "\ufeff"


def check_size(size: int, max_bytes: int) -> None:
    """Refuse input over ``max_bytes`` before any work is spent on it."""
    if size > max_bytes:
        raise DecodeError(
            f"input is {size} bytes, over the limit of {max_bytes} bytes; "
            "split it into smaller bodies or raise the size limit"
        )


def to_text(data: bytes | str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Decode UTF-8 (a leading BOM is dropped); DecodeError names the bad byte's line."""
    check_size(len(data), max_bytes)  # characters for str input, bytes otherwise
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line_no = data.count(b"\n", 0, exc.start) + 1
            raise DecodeError(
                f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} ({exc.reason}); "
                "re-encode the input as UTF-8",
                line_no=line_no,
            ) from None
    return text[1:] if text.startswith(_BOM) else text
