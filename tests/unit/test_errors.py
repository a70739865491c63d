from __future__ import annotations

import msgbus.errors as errors
from msgbus.errors import DecodeError, MsgbusError


def test_every_error_derives_from_the_root_and_is_exported() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    assert set(errors.__all__) == classes
    for name in classes:
        assert issubclass(getattr(errors, name), MsgbusError)


def test_decode_error_names_the_place() -> None:
    exc = DecodeError("expected 'key: value'", message_no=2, line_no=7, field="siteName")
    assert str(exc) == "message 2, line 7, field 'siteName': expected 'key: value'"
    assert (exc.message_no, exc.line_no, exc.field) == (2, 7, "siteName")
    assert str(DecodeError("empty input")) == "empty input"
