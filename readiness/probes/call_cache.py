"""One answer per AWS read within a probe run, shared by the run's probes.

Probes are small and independent, so several ask the same question: the instances of a
region, the account's buckets and their regions, the databases. Within one run the answer
is the same (a run takes seconds), so the first probe to ask calls AWS and the others get a
copy; a probe asking while the first call is in flight waits for it instead of calling too.
That also gives every probe of a run the same view of the account.

Hooked into botocore's own events, so probes call their clients as usual:
`provide-client-params` names the question, `before-call` answers it from the cache,
`after-call` keeps the answer. Only answers that would be the same again are kept: a
success, or a client error that is not throttling; never a streamed body, a server error or
a failed connection.
"""

from __future__ import annotations

import json
import pickle
import threading
import zlib
from dataclasses import dataclass, field

CONTEXT_KEY = "readiness_cache_key"
FROM_CACHE = "readiness_from_cache"
# How long a probe waits for another probe's identical call before making its own.
WAIT_SECONDS = 60.0
# The codes AWS uses for "slow down" (base.error_result names them as throttling too).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "ProvisionedThroughputExceededException",
    }
)
# Client errors that say "not now" rather than "no": asking again may answer differently.
TRANSIENT_CODES = THROTTLING_CODES | {
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
    "LimitExceededException",
}

_local = threading.local()


@dataclass
class _CachedHTTP:
    """What botocore reads of an HTTP response after `before-call` answered for it."""

    status_code: int
    headers: dict = field(default_factory=dict)
    raw: None = None
    content: bytes = b""


class CallCache:
    """Answers by (service, region, operation, parameters), for one run."""

    def __init__(self) -> None:
        self._answers: dict[tuple, tuple[int, bytes]] = {}
        self._pending: dict[tuple, threading.Event] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._answers)

    def claim(self, key: tuple) -> tuple[int, dict] | None:
        """The kept answer; else None, and the caller must call AWS and then `settle`."""
        while True:
            with self._lock:
                if key in self._answers:
                    self.hits += 1
                    status, kept = self._answers[key]
                    return status, _thaw(kept)
                pending = self._pending.get(key)
                if pending is None:
                    self._pending[key] = threading.Event()
                    self.misses += 1
                    return None
            if not pending.wait(WAIT_SECONDS):
                with self._lock:
                    self.misses += 1
                return None
            with self._lock:
                if key not in self._answers:
                    # The other call failed or was not worth keeping: make our own.
                    self.misses += 1
                    return None

    def settle(self, key: tuple, answer: tuple[int, dict] | None) -> None:
        # Frozen before the lock: the other threads' lookups do not wait for it.
        kept = None if answer is None else (answer[0], _freeze(answer[1]))
        with self._lock:
            if kept is not None and kept[1] is not None:
                self._answers[key] = kept
            pending = self._pending.pop(key, None)
        if pending is not None:
            pending.set()


def _freeze(parsed: dict) -> bytes | None:
    """The answer as compressed bytes; None if it cannot be pickled (then it is not kept)."""
    try:
        return zlib.compress(pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL), 1)
    except (pickle.PicklingError, TypeError, AttributeError):
        return None


def _thaw(kept: bytes) -> dict:
    # Only this process's own pickles, of botocore's parsed answers, are ever loaded.
    return pickle.loads(zlib.decompress(kept))


def current() -> CallCache | None:
    return getattr(_local, "cache", None)


def use(cache: CallCache | None) -> None:
    """Make `cache` the one this thread's AWS calls go through (None: call AWS every time)."""
    _local.cache = cache


def name_call(model, params, context, **_) -> None:
    """provide-client-params: the question's key, when a cache is in use and the answer can
    be kept (a streamed body is read once, so it never is)."""
    if current() is None or model.has_streaming_output:
        return
    # One run reads one account through one endpoint, so these name the question.
    key = (
        model.service_model.service_name,
        context.get("client_region"),
        model.name,
        json.dumps(params, sort_keys=True, default=str),
    )
    context[CONTEXT_KEY] = key


def answer_call(context, **_):
    """before-call: the kept answer, so botocore makes no request."""
    key = context.get(CONTEXT_KEY)
    cache = current()
    if key is None or cache is None:
        return None
    found = cache.claim(key)
    if found is None:
        context["readiness_cache"] = cache
        return None
    context[FROM_CACHE] = True
    status, parsed = found
    return _CachedHTTP(status), parsed


def keep_answer(http_response, parsed, context, **_) -> None:
    """after-call: keep what AWS answered, and release any probe waiting for it."""
    cache = context.pop("readiness_cache", None)
    if cache is None or context.get(FROM_CACHE):
        return
    status = http_response.status_code
    code = str((parsed.get("Error") or {}).get("Code") or "") if status >= 300 else ""
    worth_keeping = status < 300 or (status < 500 and code and code not in TRANSIENT_CODES)
    cache.settle(context[CONTEXT_KEY], (status, parsed) if worth_keeping else None)


def drop_claim(context, **_) -> None:
    """after-call-error: the request never got an answer; let a waiting probe call itself."""
    cache = context.pop("readiness_cache", None)
    if cache is not None:
        cache.settle(context[CONTEXT_KEY], None)


def register(client) -> None:
    # botocore runs the handlers of the deepest event names first. `before-call.*.*` is as deep
    # as a Stubber's, and first among them, so the cache answers before anything else; plain
    # `after-call` runs after every deeper handler has finished the answer (S3's
    # GetBucketLocation region, IAM's decoded policies), so what is kept is what a caller gets.
    events = client.meta.events
    events.register("provide-client-params", name_call)
    events.register_first("before-call.*.*", answer_call)
    events.register_last("after-call", keep_answer)
    events.register("after-call-error", drop_claim)
