"""A worker keeps the AWS answers of a bounded number of accounts per process."""

from types import SimpleNamespace

from django.utils import timezone

from readiness.probe_runs import services


def test_the_least_recently_read_account_s_answers_go_when_the_cache_is_full():
    run = SimpleNamespace(pk=-1, created_at=timezone.now())  # the cache reads these two only
    accounts = [f"{number:012d}" for number in range(services.RUN_CACHE_ACCOUNTS + 8)]
    try:
        first = services._cache_for(run, accounts[0])
        kept = services._cache_for(run, accounts[1])
        for account in accounts[2:]:
            services._cache_for(run, accounts[1])  # read all along: recently used
            services._cache_for(run, account)
        assert services._cache_for(run, accounts[1]) is kept
        assert services._cache_for(run, accounts[0]) is not first
        held = [key for key in services._run_caches if key[0] == run.pk]
        assert len(held) <= services.RUN_CACHE_ACCOUNTS
    finally:
        services._forget_cache(run.pk)
