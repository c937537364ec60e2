"""Monitoring & Observability / SNS Notifications: alert topics with confirmed subscribers."""

from __future__ import annotations

from collections import Counter, defaultdict

from readiness.probes.base import (
    Finding,
    ProbeContext,
    ProbeResult,
    Scope,
    Severity,
    Status,
    probe,
    verdict,
)

SECTION = "Monitoring & Observability"


@probe(
    key="monitoring.sns_subscriptions",
    section=SECTION,
    item="SNS Notifications",
    title=(
        "The region has SNS topics; each has a confirmed subscription and none delivers to a "
        "plain-HTTP endpoint"
    ),
    actions=("sns:ListTopics", "sns:ListSubscriptions"),
    scope=Scope.REGIONAL,
    severity=Severity.HIGH,
    remediation=(
        "Subscribe the team to each alert topic (`aws sns subscribe --topic-arn <arn> "
        "--protocol email|https|sqs|lambda --notification-endpoint <endpoint>`, or an AWS "
        "Chatbot / incident-tool HTTPS endpoint) and confirm pending subscriptions (the email "
        "link, or ConfirmSubscription for HTTPS). Replace http:// endpoints with https:// ones "
        "so alerts are not sent unencrypted, and delete topics nobody uses."
    ),
)
def sns_subscriptions(context: ProbeContext) -> ProbeResult:
    topics = [topic["TopicArn"] for topic in context.paginate("sns", "list_topics", "Topics")]
    if not topics:
        return ProbeResult(
            Status.FAIL,
            f"No SNS topic in {context.region}: alerts go nowhere",
            facts={"topics": 0},
        )
    # One ListSubscriptions for the region instead of one ListSubscriptionsByTopic per topic.
    subscriptions: dict[str, list[dict]] = defaultdict(list)
    for subscription in context.paginate("sns", "list_subscriptions", "Subscriptions"):
        subscriptions[subscription.get("TopicArn", "")].append(subscription)
    protocols: Counter[str] = Counter()
    findings = []
    for topic in topics:
        subs = subscriptions.get(topic, [])
        # Unconfirmed subscriptions carry "PendingConfirmation" (or "Deleted") instead of an ARN.
        confirmed = [s for s in subs if str(s.get("SubscriptionArn", "")).startswith("arn:")]
        plain_http = [s for s in subs if str(s.get("Protocol", "")).lower() == "http"]
        kinds = Counter(str(s.get("Protocol", "?")).lower() for s in confirmed)
        protocols.update(kinds)
        problems = []
        if not confirmed:
            pending = len(subs)
            problems.append(
                "no confirmed subscription"
                + (f" ({pending} pending confirmation)" if pending else "")
            )
        if plain_http:
            # Endpoints are not reported: they may hold tokens or people's addresses.
            problems.append(f"{len(plain_http)} subscription(s) to a plain-HTTP endpoint")
        if problems:
            findings.append(Finding(topic, Status.FAIL, "; ".join(problems)))
        else:
            described = ", ".join(f"{name} x{count}" for name, count in sorted(kinds.items()))
            reason = f"{len(confirmed)} confirmed subscription(s): {described}"
            findings.append(Finding(topic, Status.PASS, reason))
    return verdict(
        findings,
        passed="All {total} SNS topics have a confirmed subscription and no plain-HTTP endpoint",
        failed="{failed} of {total} SNS topics have no confirmed subscription or a plain-HTTP one",
        empty="",
        facts={
            "topics": len(topics),
            "confirmed_subscriptions_by_protocol": dict(protocols),
        },
    )
