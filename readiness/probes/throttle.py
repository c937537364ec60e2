"""AWS request rates per account, service and region, shared by every worker process.

botocore's adaptive retry mode slows one client down once AWS throttles it; but a run's
checks are spread over many worker processes, each with its own clients, and together they
can still send an account's API more than its quota allows, each learning about it only from
its own throttling errors. So before each request (not before an answer the run's call
cache gives) a check takes a slot from a moving-window limiter kept in Redis (the `limits`
library's Lua scripts: one atomic step per slot, whatever the number of workers); with no
slot free it waits for one, rather than sending a request AWS would refuse.

AWS's request quotas are per account and region (EC2's request token buckets, CloudWatch's
TPS), global services' per account: the key is the account, the service and the region the
client calls. Rates are per service ("ec2": "20/second"), with a default for the others.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

NAMESPACE = "readiness-aws"
DEFAULT = "default"
# A wait is cut into steps this long at most, so a cancelled run or a check past its
# deadline stops waiting within one step.
MAX_STEP_SECONDS = 0.5


def parse_rates(rates: Mapping[str, str]) -> dict[str, RateLimitItem]:
    """{service: rate} from {"ec2": "20/second", "default": "10/second"}; ValueError names a
    rate `limits` cannot read. A default is required."""
    parsed = {}
    for service, text in rates.items():
        try:
            parsed[service] = parse(str(text))
        except ValueError as error:
            raise ValueError(f"rate for {service!r}: {text!r} is not like '20/second'") from error
    if DEFAULT not in parsed:
        raise ValueError(f"rates need a {DEFAULT!r} entry, e.g. '20/second'")
    return parsed


class RequestLimiter:
    """Slots of AWS requests per (account, service, region), in `storage_uri` (redis://… so
    that every process shares them; memory:// counts within this process only)."""

    def __init__(self, storage_uri: str, rates: Mapping[str, str]) -> None:
        self.rates = parse_rates(rates)
        options = {"key_prefix": NAMESPACE} if storage_uri.startswith("redis") else {}
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        self._broken_since: float | None = None
        self._lock = threading.Lock()
        self.waited_seconds = 0.0  # in this process, for benchmarks and tests

    def rate_of(self, service: str) -> RateLimitItem:
        return self.rates.get(service, self.rates[DEFAULT])

    def wait(
        self, *, account: str, service: str, region: str, interrupt: Callable[[], None]
    ) -> float:
        """Take a slot, waiting for one as long as needed; returns the seconds waited.
        `interrupt` is called before each wait and may raise to stop waiting (a cancelled
        run, a check past its deadline). When the storage fails, requests go unlimited
        (botocore's adaptive retries still back off) and the failure is logged once."""
        rate = self.rate_of(service)
        waited = 0.0
        while True:
            try:
                if self._limiter.hit(rate, account, service, region):
                    self._recovered()
                    break
                reset = self._limiter.get_window_stats(rate, account, service, region).reset_time
            except Exception as error:  # Redis away: never fail a check for the limiter
                self._broke(error)
                break
            interrupt()
            # Jitter, so that the waiters of one key do not all come back at the same moment.
            step = min(max(reset - time.time(), 0.005), MAX_STEP_SECONDS)
            step *= random.uniform(1.0, 1.2)
            time.sleep(step)
            waited += step
        if waited:
            with self._lock:
                self.waited_seconds += waited
        return waited

    def _broke(self, error: Exception) -> None:
        with self._lock:
            first = self._broken_since is None
            if first:
                self._broken_since = time.monotonic()
        if first:
            log.warning("AWS request limiter unavailable, sending unlimited: %s", error)

    def _recovered(self) -> None:
        if self._broken_since is not None:
            with self._lock:
                self._broken_since = None
            log.warning("AWS request limiter available again")
