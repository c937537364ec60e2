import pytest
from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.readiness.probes.monitoring.helpers import (
    REGION,
    _topic,
    _without_metadata,
    assert_access_denied_names_a_declared_action,
    run,
    statuses,
)


def test_sns_passes_with_confirmed_email_and_https_subscriptions(aws, make_context):
    sns = aws.client("sns")
    topic = _topic(aws, "oncall")
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    sns.subscribe(TopicArn=topic, Protocol="https", Endpoint="https://hooks.example.com/alerts")
    result = run("monitoring.sns_subscriptions", make_context())
    assert result.status == Status.PASS, result
    assert result.facts["confirmed_subscriptions_by_protocol"] == {"email": 1, "https": 1}


def test_sns_fails_topics_without_subscribers_or_with_plain_http_endpoints(aws, make_context):
    sns = aws.client("sns")
    orphan = _topic(aws, "orphan")
    insecure = _topic(aws, "insecure")
    sns.subscribe(TopicArn=insecure, Protocol="http", Endpoint="http://hooks.example.com/alerts")
    good = _topic(aws, "oncall")
    sns.subscribe(TopicArn=good, Protocol="sqs", Endpoint=f"arn:aws:sqs:{REGION}:123456789012:q")
    result = run("monitoring.sns_subscriptions", make_context())
    assert result.status == Status.FAIL
    assert statuses(result) == {orphan: Status.FAIL, insecure: Status.FAIL, good: Status.PASS}
    reasons = {f.resource: f.reason for f in result.findings}
    assert "no confirmed subscription" in reasons[orphan]
    assert "plain-HTTP" in reasons[insecure]
    assert "hooks.example.com" not in reasons[insecure]


def test_sns_fails_a_topic_whose_only_subscription_awaits_confirmation(aws, make_context):
    topic = _topic(aws, "oncall")
    aws.client("sns").subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    context = make_context()
    client = context.client("sns")
    topics = _without_metadata(client.list_topics())
    listed = _without_metadata(client.list_subscriptions())
    # moto confirms every subscription at once; AWS lists an unconfirmed one this way.
    listed["Subscriptions"][0]["SubscriptionArn"] = "PendingConfirmation"
    with Stubber(client) as stubber:
        stubber.add_response("list_topics", topics)
        stubber.add_response("list_subscriptions", listed)
        result = run("monitoring.sns_subscriptions", context)
    assert result.status == Status.FAIL
    assert result.findings[0].resource == topic
    assert "1 pending confirmation" in result.findings[0].reason


def test_sns_fails_when_the_region_has_no_topic(aws, make_context):
    result = run("monitoring.sns_subscriptions", make_context())
    assert result.status == Status.FAIL
    assert "alerts go nowhere" in result.summary


@pytest.mark.parametrize(
    ("key", "region", "service", "operation"),
    [
        ("monitoring.sns_subscriptions", REGION, "sns", "list_topics"),
    ],
)
def test_access_denied_is_an_error_naming_a_declared_action(
    aws, make_context, key, region, service, operation
):
    assert_access_denied_names_a_declared_action(make_context(region), key, service, operation)
