from botocore.stub import Stubber

from readiness.probes.base import Status
from tests.readiness.probes.compliance.helpers import run


def test_account_public_access_block(aws, make_context):
    result = run("compliance.s3_account_public_access", make_context())
    assert result.status == Status.FAIL, result
    control = aws.client("s3control")
    control.meta.events.register(
        "before-send.s3-control",
        lambda request, **_: setattr(request, "url", request.url.replace("123456789012.", "")),
    )
    control.put_public_access_block(
        AccountId="123456789012",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": False,
        },
    )
    partial = run("compliance.s3_account_public_access", make_context())
    assert partial.status == Status.FAIL and "RestrictPublicBuckets off" in partial.summary
    control.put_public_access_block(
        AccountId="123456789012",
        PublicAccessBlockConfiguration={
            name: True
            for name in (
                "BlockPublicAcls",
                "IgnorePublicAcls",
                "BlockPublicPolicy",
                "RestrictPublicBuckets",
            )
        },
    )
    assert run("compliance.s3_account_public_access", make_context()).status == Status.PASS


def test_macie(aws, make_context):
    assert run("compliance.macie", make_context()).status == Status.PASS  # moto starts enabled
    context = make_context()
    with Stubber(context.client("macie2")) as stubber:
        stubber.add_client_error(
            "get_macie_session", "AccessDeniedException", "Macie is not enabled.", 403
        )
        assert run("compliance.macie", context).summary == "Macie is not enabled in this region"
    with Stubber(context.client("macie2")) as stubber:
        stubber.add_response("get_macie_session", {"status": "PAUSED"})
        assert run("compliance.macie", context).status == Status.FAIL
