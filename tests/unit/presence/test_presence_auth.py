"""Who may send control commands: allowed users, HMAC signatures, freshness, replays."""

from __future__ import annotations

import time

import pytest

from msgbus.config import ControlConfig
from msgbus.errors import ControlError
from msgbus.presence.auth import Authorizer, sign
from msgbus.presence.messages import ControlRequest, Target


def _request(
    command: str = "pause", sender: str = "alice", **kw: object
) -> tuple[ControlRequest, bytes]:
    request = ControlRequest.model_validate(
        {"command": command, "sender": sender, "target": {"scope": "all"}, **kw}
    )
    return request, request.model_dump_json().encode()


def _auth(**control: object) -> Authorizer:
    # Started a while ago: the requests of the tests are signed after it.
    return Authorizer(ControlConfig.model_validate(control), not_before=time.time() - 30)


def test_status_is_open_to_anyone() -> None:
    request, body = _request("status", sender="mallory")
    _auth().check(request, body, None)


def test_empty_allowed_users_refuses_every_other_command() -> None:
    request, body = _request("pause")
    with pytest.raises(ControlError, match=r"'alice' may not send 'pause'.*allowed_users"):
        _auth().check(request, body, None)


def test_allowed_user_without_secret_is_believed_on_the_claim() -> None:
    request, body = _request("stop")
    _auth(allowed_users=["alice"]).check(request, body, None)


def test_user_not_in_the_list_is_refused() -> None:
    request, body = _request("stop", sender="bob")
    with pytest.raises(ControlError, match="'bob'"):
        _auth(allowed_users=["alice"]).check(request, body, None)


def test_user_with_secret_must_sign() -> None:
    auth = _auth(allowed_users=["alice"], secrets={"alice": "s3cret"})
    request, body = _request()
    with pytest.raises(ControlError, match="missing or wrong signature"):
        auth.check(request, body, None)
    with pytest.raises(ControlError, match="missing or wrong signature"):
        auth.check(request, body, sign(body, "other"))
    auth.check(request, body, sign(body, "s3cret"))


def test_signature_covers_the_whole_body() -> None:
    auth = _auth(allowed_users=["alice"], secrets={"alice": "s3cret"})
    request, body = _request()
    good = sign(body, "s3cret")
    tampered_request, tampered = _request("stop", id=request.id, sent_at=request.sent_at)
    with pytest.raises(ControlError, match="signature"):
        auth.check(tampered_request, tampered, good)


def test_signed_request_is_refused_when_too_old_or_replayed() -> None:
    auth = _auth(allowed_users=["alice"], secrets={"alice": "k"}, max_clock_skew=60)
    old, old_body = _request(sent_at=time.time() - 61)
    with pytest.raises(ControlError, match=r"old; refused beyond control\.max_clock_skew"):
        auth.check(old, old_body, sign(old_body, "k"))
    fresh, body = _request()
    auth.check(fresh, body, sign(body, "k"))
    with pytest.raises(ControlError, match="replay"):
        auth.check(fresh, body, sign(body, "k"))


def test_sign_is_hmac_sha256_hex() -> None:
    # RFC 4231 test case 2.
    assert sign(b"what do ya want for nothing?", "Jefe") == (
        "hmac-sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_target_is_signed_so_a_command_cannot_be_redirected() -> None:
    auth = _auth(allowed_users=["alice"], secrets={"alice": "k"})
    request = ControlRequest(command="stop", sender="alice", target=Target(scope="name", value="a"))
    body = request.model_dump_json().encode()
    signature = sign(body, "k")
    moved = request.model_copy(update={"target": Target(scope="name", value="b")})
    with pytest.raises(ControlError, match="signature"):
        auth.check(moved, moved.model_dump_json().encode(), signature)


def test_a_captured_command_is_refused_after_a_restart_and_after_a_reload() -> None:
    control = {"allowed_users": ["alice"], "secrets": {"alice": "k"}, "max_clock_skew": 120}
    before = _auth(**control)
    captured, body = _request()
    before.check(captured, body, sign(body, "k"))  # executed once, and recorded
    time.sleep(0.01)
    restarted = Authorizer(ControlConfig.model_validate(control))  # a new process
    with pytest.raises(ControlError, match="signed before this component started"):
        restarted.check(captured, body, sign(body, "k"))
    reloaded = before.reconfigured(ControlConfig.model_validate(control))
    with pytest.raises(ControlError, match="replay"):
        reloaded.check(captured, body, sign(body, "k"))
    fresh, fresh_body = _request()  # signed now: welcome after either
    restarted.check(fresh, fresh_body, sign(fresh_body, "k"))
