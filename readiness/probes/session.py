"""boto3 sessions for a deployment's AWS target: the worker's own credentials or an assumed role.

No long-term secret is ever stored: a role is assumed with STS for each run, and boto3 reads
`AWS_ENDPOINT_URL` (how tests and the demo reach a moto server) from the environment.
"""

import json
import os
import re
import sys
import threading
from datetime import datetime

import boto3
import botocore.client
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.model import ServiceModel

ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
ROLE_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)*:iam::(?P<account>\d{12}):role/[\w+=,.@/-]{1,512}$")
SESSION_NAME_RE = re.compile(r"[^\w+=,.@-]")


def known_regions() -> tuple[str, ...]:
    """Every commercial, GovCloud and China region botocore knows, without calling AWS."""
    session = boto3.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return tuple(sorted(regions))


def session_name(deployment_label: str) -> str:
    """An STS session name that tells CloudTrail readers which deployment asked (≤ 64 chars)."""
    return SESSION_NAME_RE.sub("-", f"readiness-{deployment_label}")[:64]


_DOCUMENTATION = frozenset({"documentation", "documentationUrl"})


def _without_documentation(pairs: list[tuple]) -> dict:
    # Emptied, not dropped: botocore reads some documentation keys without a default. String
    # values are interned: the probes' models repeat some 36,000 names ("structure", "String",
    # shape names) in 185,000 places, each parsed as an object of its own (8 → 2.5 MB, and
    # ~5 MB of a worker's RSS).
    return {
        key: "" if key in _DOCUMENTATION else sys.intern(value) if type(value) is str else value
        for key, value in pairs
    }


class _LeanFileLoader(botocore.loaders.JSONFileLoader):
    """botocore's model files with their documentation emptied, which only docstrings read:
    about 40 % of a worker's parsed models (125 → 75 MB for the probes' services). Plain dicts
    rather than botocore's OrderedDicts (ordered all the same); its model classes build
    their own."""

    def _load_file(self, full_path, open_method):
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as file:
            payload = file.read().decode("utf-8")
        return json.loads(payload, object_pairs_hook=_without_documentation)


# Every session of the process reads AWS's API models through one loader. Each botocore
# session otherwise parses its own copy of every service model it makes a client for (about
# 120 MB for the services the probes call), and a worker holds one session per deployment
# and role: a worker reading many accounts would hold a copy per account.
_LOADER = botocore.loaders.create_loader()
_LOADER.file_loader = _LeanFileLoader()

# botocore builds a fresh ServiceModel and a fresh client class for every client: one Python
# method, docstring object and OperationModel per operation of the API (EC2 has ~750), about
# 1.3 MB and 15 ms of CPU per EC2 client on top of the client's own 0.13 MB and 5 ms. A
# worker holds a client per account, service and region: the demo's three accounts took
# ~520 clients and the worker 490 MB, 270 MB with the classes shared. Clients made through
# the shared loader share one ServiceModel and one class per service instead: both depend
# only on the API model (and on the `creating-client-class` handlers, the same in every
# session new_session makes); what binds a client to its credentials, region and endpoint
# is per instance. botocore offers no hook for this, so ClientCreator's two builders are
# wrapped, for this loader only: every other session in the process builds its own.
_service_models: dict[tuple[str, str | None], ServiceModel] = {}
_client_classes: dict[ServiceModel, type] = {}
_build_service_model = botocore.client.ClientCreator._load_service_model
_build_client_class = botocore.client.ClientCreator._create_client_class


def _shared_service_model(creator, service_name, api_version=None):
    if creator._loader is not _LOADER:
        return _build_service_model(creator, service_name, api_version)
    model = _service_models.get((service_name, api_version))
    if model is None:  # two threads may both build it: one is kept, the same either way
        model = _service_models.setdefault(
            (service_name, api_version), _build_service_model(creator, service_name, api_version)
        )
    return model


def _shared_client_class(creator, service_name, service_model):
    if creator._loader is not _LOADER:
        return _build_client_class(creator, service_name, service_model)
    cls = _client_classes.get(service_model)
    if cls is None:
        cls = _client_classes.setdefault(
            service_model, _build_client_class(creator, service_name, service_model)
        )
    return cls


botocore.client.ClientCreator._load_service_model = _shared_service_model
botocore.client.ClientCreator._create_client_class = _shared_client_class


def new_session(**credentials) -> boto3.Session:
    """A boto3 session that shares the process's loaded API models."""
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER)
    return boto3.Session(botocore_session=core, **credentials)


# The accounts' sessions share one botocore session: each botocore session carries its own
# event system (a few hundred handlers), credential resolver, configuration and components,
# ~0.2 MB, and a worker reading a 50-account run held one per account. What binds a client
# to an account is only its credentials, given to each client (AccountSession.client).
_shared: boto3.Session | None = None
# botocore sessions are not thread-safe while they make clients (their components load
# lazily); the clients are.
_shared_lock = threading.RLock()


def _shared_session() -> boto3.Session:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = new_session()
        return _shared


class AccountSession:
    """What probes use of a boto3 session (`client`, `get_partition_for_region`) for one
    account: its credentials (None: the process's own), over the process's shared session.

    Credentials are fixed for its life, as those of a boto3 session made from an assumed role
    are: `expires_at` says until when they hold (None: the process's own, which botocore
    refreshes); the caller replaces it before then."""

    def __init__(
        self,
        *,
        region_name: str,
        credentials: dict[str, str] | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        self.region_name = region_name
        self._credentials = credentials or {}
        self.expires_at = expires_at

    def client(self, service_name: str, region_name: str | None = None, **kwargs):
        # As a boto3 session picks the region: the argument, else the config's, else its own.
        config = kwargs.get("config")
        if region_name is None and (config is None or config.region_name is None):
            region_name = self.region_name
        shared = _shared_session()
        with _shared_lock:
            return shared.client(
                service_name,
                region_name=region_name,
                **self._credentials,
                **kwargs,
            )

    def get_partition_for_region(self, region_name: str) -> str:
        shared = _shared_session()
        with _shared_lock:
            return shared.get_partition_for_region(region_name)


def target_session(
    *, role_arn: str = "", external_id: str = "", name: str = "readiness", region: str = "us-east-1"
) -> AccountSession:
    """The session probes use: the ambient credentials, or a role assumed for this run."""
    base = AccountSession(region_name=region)
    if not role_arn:
        return base
    sts = base.client("sts", config=Config(retries={"mode": "standard", "total_max_attempts": 4}))
    request = {"RoleArn": role_arn, "RoleSessionName": session_name(name), "DurationSeconds": 3600}
    if external_id:
        request["ExternalId"] = external_id
    credentials = sts.assume_role(**request)["Credentials"]
    return AccountSession(
        region_name=region,
        credentials={
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        },
        expires_at=credentials["Expiration"],
    )
