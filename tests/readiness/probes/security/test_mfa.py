from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.readiness.probes.security.helpers import run


def test_mfa_fails_for_console_users_without_a_device(aws, make_context):
    iam = aws.client("iam")
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Very-long-password-1")
    iam.create_user(UserName="ci-bot")  # no console password: not in scope
    result = run("iam.mfa", make_context("global"))
    assert result.status == Status.FAIL
    failing = {f.resource.split(":")[-1] for f in result.findings if f.status == Status.FAIL}
    assert "user/alice" in failing
    assert not any("ci-bot" in f.resource for f in result.findings)


def test_mfa_passes_when_root_and_console_users_have_devices(aws, make_context):
    iam = aws.client("iam")
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Very-long-password-1")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"][
        "SerialNumber"
    ]
    iam.enable_mfa_device(
        UserName="alice",
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )
    context = make_context("global")
    client = context.client("iam")
    # moto always reports the root account without MFA: answer that one call as AWS would.
    real_summary = client.get_account_summary
    with Stubber(client) as stubber:
        stubber.add_response("get_account_summary", {"SummaryMap": {"AccountMFAEnabled": 1}})
        summary = client.get_account_summary()
    client.get_account_summary = lambda: summary
    try:
        result = run("iam.mfa", context)
    finally:
        client.get_account_summary = real_summary
    assert result.status == Status.PASS, result
    assert result.facts["console_users"] == 1
