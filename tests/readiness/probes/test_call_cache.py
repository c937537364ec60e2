"""One answer per AWS read within a run (readiness.probes.call_cache)."""

import threading
import time

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from readiness.probes import call_cache
from readiness.probes.base import ProbeContext, bucket_regions, parallel_map
from readiness.probes.call_cache import CallCache
from readiness.probes.runner import run_all
from tests.conftest import REGION


@pytest.fixture
def cache():
    made = CallCache()
    call_cache.use(made)
    yield made
    call_cache.use(None)


@pytest.fixture
def sent(aws):
    """Counts the HTTP requests that actually leave botocore, per operation."""
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def count(request, **kwargs):
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        with lock:
            counts[operation] = counts.get(operation, 0) + 1

    return counts, count


def context_for(aws, region=REGION) -> ProbeContext:
    return ProbeContext(session=aws, region=region, max_attempts=1)


def watch(client, count) -> None:
    client.meta.events.register("before-send", count)


def test_the_same_question_twice_goes_to_aws_once_and_answers_alike(aws, cache, sent):
    counts, count = sent
    aws.client("s3").create_bucket(Bucket="records")
    s3 = context_for(aws).client("s3")
    watch(s3, count)
    first = s3.list_buckets()
    second = s3.list_buckets()
    assert counts == {"ListBuckets": 1}
    assert [b["Name"] for b in first["Buckets"]] == [b["Name"] for b in second["Buckets"]]
    assert (cache.hits, cache.misses) == (1, 1)


def test_other_parameters_or_regions_are_other_questions(aws, cache, sent):
    counts, count = sent
    here = context_for(aws).client("ec2")
    there = context_for(aws, "eu-west-1").client("ec2")
    watch(here, count)
    watch(there, count)
    here.describe_vpcs()
    here.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
    there.describe_vpcs()
    assert counts == {"DescribeVpcs": 3}


def test_a_probe_that_changes_its_answer_does_not_change_the_next_one(aws, cache):
    aws.client("s3").create_bucket(Bucket="records")
    s3 = context_for(aws).client("s3")
    s3.list_buckets()["Buckets"].clear()
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["records"]


def test_without_a_cache_every_call_goes_to_aws(aws, sent):
    counts, count = sent
    s3 = context_for(aws).client("s3")
    watch(s3, count)
    s3.list_buckets()
    s3.list_buckets()
    assert counts == {"ListBuckets": 2}


def test_a_refusal_is_kept(aws, cache, sent):
    counts, count = sent
    aws.client("s3").create_bucket(Bucket="records")
    s3 = context_for(aws).client("s3")
    watch(s3, count)
    for _ in range(2):
        with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
            s3.get_bucket_policy(Bucket="records")
    assert counts == {"GetBucketPolicy": 1}


def test_throttling_and_server_errors_are_not_kept(aws, cache):
    s3 = context_for(aws).client("s3")
    # A Stubber checks the order of calls before any handler may answer, so it only shows
    # what the cache keeps, not that a second call is answered from it.
    with Stubber(s3) as stub:
        stub.add_client_error("get_bucket_acl", "SlowDown", http_status_code=503)
        stub.add_client_error("get_bucket_acl", "Throttling", http_status_code=400)
        stub.add_client_error("get_bucket_acl", "InternalError", http_status_code=500)
        stub.add_response("get_bucket_acl", {"Grants": []})
        for code in ("SlowDown", "Throttling", "InternalError"):
            with pytest.raises(ClientError, match=code):
                s3.get_bucket_acl(Bucket="records")
            assert len(cache) == 0
        assert s3.get_bucket_acl(Bucket="records")["Grants"] == []
        assert len(cache) == 1
        stub.assert_no_pending_responses()


def test_probes_asking_at_once_wait_for_one_call(aws, cache, sent):
    counts, count = sent
    aws.client("s3").create_bucket(Bucket="records")
    s3 = context_for(aws).client("s3")
    watch(s3, count)

    def slow(request, **kwargs):
        time.sleep(0.2)  # every probe asks while the first call is still out

    s3.meta.events.register("before-send.s3.ListBuckets", slow)
    answers = parallel_map(lambda _: s3.list_buckets()["Buckets"], range(6), workers=6)
    assert counts == {"ListBuckets": 1}
    assert all(answer == answers[0] for answer in answers)


def test_a_failed_connection_lets_the_waiting_probe_call_itself(aws, cache, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    context = ProbeContext(session=aws, region=REGION, max_attempts=1, timeout_seconds=1)
    s3 = context.client("s3")
    for _ in range(2):
        with pytest.raises(Exception, match=r"[Cc]onnect"):
            s3.list_buckets()
    assert len(cache) == 0 and cache.misses == 2


def test_a_run_shares_answers_between_its_probes(aws, sent, declared_actions_cover_calls):
    counts, count = sent
    aws.client("s3").create_bucket(Bucket="records")
    # On the session, so every client the run builds from it counts what it sends.
    aws.events.register("before-send", count)
    # Both read the account's buckets and their regions.
    keys = ["encryption.s3_at_rest", "encryption.s3_in_transit"]
    results = run_all(session=aws, regions=[REGION], keys=keys)
    assert {r.result.status for r in results} == {"fail"}
    asked = [
        {operation for key, _, operation in declared_actions_cover_calls.calls if key == probe}
        for probe in keys
    ]
    shared = asked[0] & asked[1]
    assert "ListBuckets" in shared
    # Each question both probes asked went to AWS once.
    assert {operation: counts.get(operation) for operation in shared} == dict.fromkeys(shared, 1)


def test_a_kept_answer_is_the_finished_one(aws, cache):
    """What botocore's own handlers add after the call (S3's GetBucketLocation region, read
    from the body) is in the kept answer too."""
    s3 = aws.client("s3")
    s3.create_bucket(
        Bucket="records-eu", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    context = context_for(aws)
    assert bucket_regions(context) == {"records-eu": "eu-west-1"}
    assert bucket_regions(context) == {"records-eu": "eu-west-1"}
    assert cache.hits == 2


def test_a_kept_answer_comes_back_whole_with_its_dates(aws, cache):
    aws.client("ec2", region_name=REGION).run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1
    )
    client = context_for(aws).client("ec2")
    first = client.describe_instances()
    second = client.describe_instances()
    assert cache.hits == 1
    assert second == first
    launched = second["Reservations"][0]["Instances"][0]["LaunchTime"]
    assert launched == first["Reservations"][0]["Instances"][0]["LaunchTime"]
    assert launched.tzinfo is not None


def test_answers_are_kept_as_compact_bytes():
    cache = CallCache()
    answer = {"Buckets": [{"Name": f"bucket-{number}"} for number in range(500)]}
    assert cache.claim(("s3", REGION, "ListBuckets", "{}")) is None
    cache.settle(("s3", REGION, "ListBuckets", "{}"), (200, answer))
    [(status, kept)] = cache._answers.values()
    assert status == 200 and isinstance(kept, bytes) and len(kept) < 2_000
    assert cache.claim(("s3", REGION, "ListBuckets", "{}")) == (200, answer)


def test_an_answer_that_cannot_be_pickled_is_not_kept_and_frees_the_waiters():
    cache = CallCache()
    key = ("s3", REGION, "GetObject", "{}")
    assert cache.claim(key) is None
    waiter = threading.Thread(target=lambda: results.append(cache.claim(key)))
    results: list = []
    waiter.start()
    time.sleep(0.1)
    cache.settle(key, (200, {"Body": threading.Lock()}))
    waiter.join(5)
    assert results == [None] and len(cache) == 0
