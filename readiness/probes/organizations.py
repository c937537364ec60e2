"""The accounts of an AWS organization, as its management (or delegated administrator)
account lists them: what a deployment's accounts are picked from. No Django."""

from dataclasses import dataclass

import boto3
from botocore.config import Config

# Listing accounts is one call per page of 20; a person waits for it in a request.
_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=10
)
# An organization holds at most 10,000 accounts by default; a page is cut well before that.
MAX_ACCOUNTS = 1000


@dataclass(frozen=True)
class OrganizationAccount:
    account_id: str
    name: str
    email: str
    status: str

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"


def organization_accounts(
    session: boto3.Session, *, parent_id: str = ""
) -> list[OrganizationAccount]:
    """The organization's accounts, or only those directly under one organizational unit or
    root (`parent_id`), sorted by name; at most MAX_ACCOUNTS. Raises botocore's errors
    (AccessDenied, AWSOrganizationsNotInUseException, ParentNotFoundException) to the caller,
    which says what went wrong."""
    client = session.client("organizations", region_name="us-east-1", config=_CONFIG)
    if parent_id:
        pages = client.get_paginator("list_accounts_for_parent").paginate(ParentId=parent_id)
    else:
        pages = client.get_paginator("list_accounts").paginate()
    accounts = []
    for page in pages:
        for account in page.get("Accounts", []):
            accounts.append(
                OrganizationAccount(
                    account_id=account["Id"],
                    name=account.get("Name", ""),
                    email=account.get("Email", ""),
                    status=account.get("Status", ""),
                )
            )
        if len(accounts) >= MAX_ACCOUNTS:
            break
    return sorted(accounts[:MAX_ACCOUNTS], key=lambda a: (a.name.lower(), a.account_id))
