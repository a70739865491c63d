"""The receipt window, against a scripted broker that speaks through the real codec."""

from __future__ import annotations

from typing import cast

from msgbus.errors import BrokerBusy, BrokerError, ConnectionLost, TimeoutException
from msgbus.publish import ID_HEADER, Envelope
from msgbus.publish.pipeline import Interrupted, Pipeline
from msgbus.stomp.codec import FrameParser
from msgbus.stomp.frames import ErrorFrame, Frame, ReceiptFrame
from msgbus.transport.connection import Connection
from msgbus.transport.url import BrokerURL


class ScriptedBroker:
    """Stands in for a Connection: decodes what the pipeline writes, answers receipts
    for everything received so far whenever the pipeline waits (unless told not to)."""

    version = "1.2"
    url = BrokerURL(host="127.0.0.1", port=1)

    def __init__(
        self,
        *,
        answer: bool = True,
        refuse_id: str | None = None,
        server: str = "ActiveMQ/5.17.2",
    ) -> None:
        self.server = server
        self.parser = FrameParser(role="server")
        self.frames: list[Frame] = []
        self.unanswered: list[Frame] = []
        self.answer = answer
        self.refuse_id = refuse_id
        self.unconfirmed = 0
        self.max_unconfirmed = 0
        self.since_receipt = 0

    def write_encoded(self, data: bytes) -> None:
        for frame in self.parser.feed(data):
            assert isinstance(frame, Frame)
            self.frames.append(frame)
            self.unanswered.append(frame)
            if frame.command == "SEND":
                self.unconfirmed += 1
        self.max_unconfirmed = max(self.max_unconfirmed, self.unconfirmed)

    def receive_many(self, limit: int, timeout: float | None) -> list[Frame]:
        if not self.answer:
            return []
        out: list[Frame] = []
        for frame in self.unanswered:
            if frame.command == "SEND":
                self.since_receipt += 1
            if frame.headers.get(ID_HEADER) == self.refuse_id and self.refuse_id:
                out.append(
                    ErrorFrame({"message": "not allowed", "receipt-id": frame.headers["receipt"]})
                )
                self.answer = False
                break
            if "receipt" in frame.headers:
                out.append(ReceiptFrame({"receipt-id": frame.headers["receipt"]}))
                self.unconfirmed -= self.since_receipt
                self.since_receipt = 0
        self.unanswered = []
        return out


def _envs(n: int) -> list[Envelope]:
    return [Envelope("/queue/w", b"%d" % i, {"k": "v"}) for i in range(n)]


def _pipeline(conn: ScriptedBroker, *, confirm: str, window: int = 8, batch: int = 3) -> Pipeline:
    # ScriptedBroker provides only what Pipeline uses of a Connection (url, version,
    # write_encoded, receive_many): a structural stand-in, not a subclass.
    return Pipeline(
        cast(Connection, conn),
        window=window,
        batch=batch,
        confirm=confirm,
        receipt_timeout=0.1,
        persistent=True,
    )


def _run(
    pipe: Pipeline, envs: list[Envelope]
) -> tuple[list[Envelope], tuple[Interrupted | None, list[tuple[Envelope, BrokerError]]]]:
    confirmed: list[Envelope] = []
    refused: list[tuple[Envelope, BrokerError]] = []
    outcome = pipe.run(
        iter(envs), lambda e, _lat: confirmed.extend(e), lambda e, err: refused.append((e, err))
    )
    return confirmed, (outcome, refused)


def test_receipt_mode_confirms_everything_in_order_within_the_window() -> None:
    conn = ScriptedBroker()
    envs = _envs(50)
    confirmed, (outcome, _) = _run(_pipeline(conn, confirm="receipt"), envs)
    assert outcome is None
    assert [e.msgbus_id for e in confirmed] == [e.msgbus_id for e in envs]
    assert 0 < conn.max_unconfirmed <= 8
    sends = [f for f in conn.frames if f.command == "SEND"]
    assert all(f.headers["persistent"] == "true" and "receipt" in f.headers for f in sends)
    assert [f.headers[ID_HEADER] for f in sends] == [e.msgbus_id for e in envs]
    assert [f.body for f in sends] == [e.body for e in envs]


def test_transaction_mode_wraps_batches_and_commits_with_one_receipt() -> None:
    conn = ScriptedBroker()
    envs = _envs(7)
    confirmed, (outcome, _) = _run(_pipeline(conn, confirm="transaction"), envs)
    assert outcome is None
    assert len(confirmed) == 7
    commands = [f.command for f in conn.frames]
    assert commands == ["BEGIN", "SEND", "SEND", "SEND", "COMMIT"] * 2 + ["SEND"]
    first_tx = conn.frames[0].headers["transaction"]
    assert all(f.headers["transaction"] == first_tx for f in conn.frames[:5])
    assert "receipt" not in conn.frames[1].headers and "receipt" in conn.frames[4].headers
    assert conn.max_unconfirmed <= 8


def test_cumulative_mode_puts_one_receipt_on_the_last_send_of_each_batch() -> None:
    conn = ScriptedBroker()
    envs = _envs(7)
    confirmed, (outcome, _) = _run(_pipeline(conn, confirm="cumulative"), envs)
    assert outcome is None
    assert [e.msgbus_id for e in confirmed] == [e.msgbus_id for e in envs]
    receipted = ["receipt" in f.headers for f in conn.frames]
    assert [f.command for f in conn.frames] == ["SEND"] * 7
    assert receipted == [False, False, True, False, False, True, True]
    assert conn.max_unconfirmed <= 8


def test_no_receipt_in_time_returns_every_unconfirmed_message_in_order() -> None:
    conn = ScriptedBroker(answer=False)
    envs = _envs(20)
    source = iter(envs)
    outcome = _pipeline(conn, confirm="transaction").run(
        source, lambda e, _l: None, lambda e, err: None
    )
    assert outcome is not None
    assert isinstance(outcome.error, TimeoutException)
    # The window filled (8) and nothing beyond it was taken from the source.
    assert [e.msgbus_id for e in outcome.pending] == [e.msgbus_id for e in envs[:8]]
    assert [e.msgbus_id for e in source] == [e.msgbus_id for e in envs[8:]]


def test_an_error_naming_one_message_refuses_it_and_hands_back_the_rest() -> None:
    envs = _envs(6)
    conn = ScriptedBroker(refuse_id=envs[2].msgbus_id)
    confirmed, (outcome, refused) = _run(
        _pipeline(conn, confirm="receipt", window=6, batch=6), envs
    )
    assert [e.msgbus_id for e in confirmed] == [e.msgbus_id for e in envs[:2]]
    assert [(e.msgbus_id, "not allowed" in str(err)) for e, err in refused] == [
        (envs[2].msgbus_id, True)
    ]
    assert outcome is not None and not outcome.broker_refused
    assert [e.msgbus_id for e in outcome.pending] == [e.msgbus_id for e in envs[3:]]


def test_an_error_inside_a_transaction_asks_for_isolation() -> None:
    envs = _envs(3)
    conn = ScriptedBroker()
    conn.refuse_id = "no-such"
    pipe = _pipeline(conn, confirm="transaction")

    def refuse_commit(limit: int, timeout: float | None) -> list[Frame]:
        commit = next(f for f in conn.unanswered if f.command == "COMMIT")
        conn.unanswered = []
        return [ErrorFrame({"message": "tx failed", "receipt-id": commit.headers["receipt"]})]

    conn.receive_many = refuse_commit  # type: ignore[method-assign]
    outcome = pipe.run(iter(envs), lambda e, _l: None, lambda e, err: None)
    assert outcome is not None and outcome.broker_refused
    assert [e.msgbus_id for e in outcome.pending] == [e.msgbus_id for e in envs]


def test_an_unnamed_error_refuses_the_message_sent_alone() -> None:
    """A broker that names no receipt (ActiveMQ on an oversized frame): isolated, the one
    message in flight is the refused one; among several, nobody can tell."""
    envs = _envs(2)

    def unnamed_error(limit: int, timeout: float | None) -> list[Frame]:
        conn.unanswered = []
        return [ErrorFrame({"message": "frame too large"})]

    conn = ScriptedBroker()
    conn.receive_many = unnamed_error  # type: ignore[method-assign]
    pipe = _pipeline(conn, confirm="cumulative")
    outcome = pipe.run(iter(envs), lambda e, _l: None, lambda e, err: None)
    assert outcome is not None and outcome.broker_refused
    assert len(outcome.pending) == 2

    conn = ScriptedBroker()
    conn.receive_many = unnamed_error  # type: ignore[method-assign]
    refused: list[str] = []
    outcome = _pipeline(conn, confirm="cumulative", window=1).run(
        iter(envs), lambda e, _l: None, lambda e, err: refused.append(e.msgbus_id), single=2
    )
    assert refused == [envs[0].msgbus_id]
    assert outcome is not None and [e.msgbus_id for e in outcome.pending] == []


def test_rabbitmq_gets_a_receipt_per_send_whatever_the_mode() -> None:
    # Its COMMIT's RECEIPT does not wait for the quorum queue (pipeline's docstring).
    for confirm in ("transaction", "cumulative", "receipt"):
        broker = ScriptedBroker(server="RabbitMQ/3.10.8")
        confirmed, (outcome, refused) = _run(_pipeline(broker, confirm=confirm), _envs(5))
        assert len(confirmed) == 5 and outcome is None and refused == []
        commands = [f.command for f in broker.frames]
        assert commands == ["SEND"] * 5, (confirm, commands)
        assert all("receipt" in f.headers for f in broker.frames)
    broker = ScriptedBroker()  # ActiveMQ keeps the mode asked for
    _run(_pipeline(broker, confirm="transaction"), _envs(5))
    assert [f.command for f in broker.frames][:2] == ["BEGIN", "SEND"]


class ClosingBroker(ScriptedBroker):
    """Answers the first ``receipts`` SENDs, then closes without ERROR: RabbitMQ 3.10's
    STOMP adapter when a reject-publish queue refuses a message (its nack crashes it)."""

    def __init__(self, receipts: int, server: str) -> None:
        super().__init__(server=server)
        self.receipts = receipts

    def receive_many(self, limit: int, timeout: float | None) -> list[Frame]:
        out = super().receive_many(limit, timeout)[: self.receipts]
        self.receipts -= len(out)
        if not out:
            raise ConnectionLost(f"connection to {self.url} lost: the broker closed it")
        return out


def test_rabbitmq_closing_under_unconfirmed_messages_holds_them_back() -> None:
    envs = _envs(10)
    confirmed, (outcome, refused) = _run(
        _pipeline(ClosingBroker(3, "RabbitMQ/3.10.8"), confirm="receipt"), envs
    )
    assert len(confirmed) == 3 and refused == []
    assert outcome is not None and isinstance(outcome.error, BrokerBusy)
    assert not outcome.broker_refused and "reject-publish" in str(outcome.error)
    # The unconfirmed ones, in order, to go again (the ones RabbitMQ kept: duplicates).
    pending = [e.msgbus_id for e in outcome.pending]
    assert pending and pending == [e.msgbus_id for e in envs[3 : 3 + len(pending)]]


def test_other_brokers_closing_or_a_named_refusal_stay_a_lost_connection() -> None:
    _, (outcome, _) = _run(
        _pipeline(ClosingBroker(3, "ActiveMQ/5.17.2"), confirm="receipt"), _envs(10)
    )
    assert outcome is not None and type(outcome.error) is ConnectionLost
    envs = _envs(6)
    broker = ScriptedBroker(refuse_id=envs[2].msgbus_id, server="RabbitMQ/3.10.8")
    _, (outcome, refused) = _run(_pipeline(broker, confirm="receipt"), envs)
    assert [e.msgbus_id for e, _ in refused] == [envs[2].msgbus_id]
    # Reconnected to at once for the rest, not held back: the refusal was for that one.
    assert outcome is not None and not isinstance(outcome.error, BrokerBusy)
