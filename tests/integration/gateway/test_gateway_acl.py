"""``msgbus gateway`` with ``gateway.permissions``, the unmodified argo-ams-library as the
client: a writer publishes but may not pull, a reader pulls but may not publish (and
its refused messages never reach the broker), each refusal a 403 naming user, action
and topic; AMS's topic and subscription ACLs (the library's getacl/modifyacl calls) add
listed users to what the groups allow, until reset."""

from __future__ import annotations

import pytest
from argo_ams_library import (  # type: ignore[import-untyped]
    AmsMessage,
    AmsServiceException,
)

from tests.chaos.harness import probe_text
from tests.fixtures.gateway import GROUPS, READER, TOKEN, Gateway

pytestmark = pytest.mark.parametrize("ams_gateway", [GROUPS], indirect=True, ids=["acl"])


def _result(tag: str) -> AmsMessage:
    return AmsMessage(data=probe_text(tag, 1), attributes={})


def test_a_writer_publishes_but_gets_403_on_pull(ams_gateway: Gateway) -> None:
    probe, reader = ams_gateway.ams(TOKEN), ams_gateway.ams(READER)
    probe.create_topic("results")
    reader.create_sub("db", "results", ackdeadline=30)
    [sent] = probe.publish("results", [_result("allowed")])["messageIds"]
    with pytest.raises(AmsServiceException) as refused:
        probe.pull_sub("db", num=10, return_immediately=True)
    assert refused.value.code == 403 and refused.value.status == "FORBIDDEN"
    assert "user probe may not read from topic results (/topic/ams.results)" in refused.value.msg
    with pytest.raises(AmsServiceException) as subscribing:
        probe.create_sub("mine", "results")
    assert subscribing.value.code == 403
    # The allowed publish went through the broker to the reader's subscription.
    [(ack_id, got)] = reader.pull_sub("db", num=10)
    assert got.get_msgid() == sent and b"summaryData: allowed" in got.get_data()
    reader.ack_sub("db", [ack_id])


def test_a_reader_gets_403_on_publish_and_nothing_reaches_the_broker(
    ams_gateway: Gateway,
) -> None:
    probe, reader = ams_gateway.ams(TOKEN), ams_gateway.ams(READER)
    probe.create_topic("results")
    reader.create_sub("db", "results", ackdeadline=30)
    with pytest.raises(AmsServiceException) as refused:
        reader.publish("results", [_result("refused")])
    assert refused.value.code == 403
    assert "user reader may not publish to topic results" in refused.value.msg
    with pytest.raises(AmsServiceException) as creating:
        reader.create_topic("mine")
    assert creating.value.code == 403 and "may not create or delete" in creating.value.msg
    # Published after the refused one: had that reached the broker, it would come first.
    [sent] = probe.publish("results", [_result("allowed")])["messageIds"]
    got = reader.pull_sub("db", num=10)
    assert [m.get_msgid() for _, m in got] == [sent]
    reader.ack_sub("db", [ack_id for ack_id, _ in got])
    assert reader.pull_sub("db", num=10, return_immediately=True) == []


def test_a_topic_acl_lets_a_listed_user_publish_until_it_is_reset(ams_gateway: Gateway) -> None:
    probe, reader = ams_gateway.ams(TOKEN), ams_gateway.ams(READER)
    probe.create_topic("results")
    reader.create_sub("db", "results", ackdeadline=30)
    assert probe.getacl_topic("results") == {"authorized_users": ["probe"]}
    with pytest.raises(AmsServiceException) as refused:
        reader.publish("results", [_result("before")])
    assert refused.value.code == 403
    assert probe.modifyacl_topic("results", ["reader"]) is True
    assert reader.getacl_topic("results") == {"authorized_users": ["probe", "reader"]}
    [sent] = reader.publish("results", [_result("listed")])["messageIds"]
    [(ack_id, got)] = reader.pull_sub("db", num=10)
    assert got.get_msgid() == sent and b"summaryData: listed" in got.get_data()
    reader.ack_sub("db", [ack_id])
    probe.modifyacl_topic("results", [])
    with pytest.raises(AmsServiceException) as again:
        reader.publish("results", [_result("after")])
    assert again.value.code == 403


def test_a_subscription_acl_lets_a_listed_user_pull_from_that_subscription_only(
    ams_gateway: Gateway,
) -> None:
    probe, reader = ams_gateway.ams(TOKEN), ams_gateway.ams(READER)
    probe.create_topic("results")
    reader.create_sub("shared", "results", ackdeadline=30)
    reader.create_sub("private", "results", ackdeadline=30)
    with pytest.raises(AmsServiceException) as refused:  # only admins change an ACL
        reader.modifyacl_sub("shared", ["reader"])
    assert refused.value.code == 403
    assert probe.modifyacl_sub("shared", ["probe"]) is True
    assert reader.getacl_sub("shared") == {"authorized_users": ["probe", "reader"]}
    assert reader.getacl_sub("private") == {"authorized_users": ["reader"]}
    [sent] = probe.publish("results", [_result("shared")])["messageIds"]
    [(ack_id, got)] = probe.pull_sub("shared", num=10)
    assert got.get_msgid() == sent
    probe.ack_sub("shared", [ack_id])
    with pytest.raises(AmsServiceException) as elsewhere:
        probe.pull_sub("private", num=10, return_immediately=True)
    assert elsewhere.value.code == 403
