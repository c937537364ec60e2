from botocore.stub import Stubber

from readiness.probes.base import Status, execute, registry

ACCOUNT = "123456789012"  # moto's default account


def run(key, context):
    return execute(registry()[key], context).result


def _repository(aws, name: str, scan_on_push: bool = False) -> str:
    return aws.client("ecr").create_repository(
        repositoryName=name, imageScanningConfiguration={"scanOnPush": scan_on_push}
    )["repository"]["repositoryArn"]


def _registry_rules(aws, scan_type: str, *rules: tuple[str, str]) -> None:
    aws.client("ecr").put_registry_scanning_configuration(
        scanType=scan_type,
        rules=[
            {
                "scanFrequency": frequency,
                "repositoryFilters": [{"filter": pattern, "filterType": "WILDCARD"}],
            }
            for frequency, pattern in rules
        ],
    )


def test_image_scanning_passes_with_scan_on_push_or_a_matching_registry_rule(aws, make_context):
    _repository(aws, "web", scan_on_push=True)
    _repository(aws, "team-a/api")
    _registry_rules(aws, "BASIC", ("SCAN_ON_PUSH", "team-a/*"))
    result = run("ecr.image_scanning", make_context())
    assert result.status == Status.PASS, result
    assert result.facts == {"repositories": 2, "registry_scan_type": "BASIC"}


def test_image_scanning_passes_with_enhanced_continuous_scanning_of_everything(aws, make_context):
    _repository(aws, "web")
    _registry_rules(aws, "ENHANCED", ("CONTINUOUS_SCAN", "*"))
    result = run("ecr.image_scanning", make_context())
    assert result.status == Status.PASS, result
    assert "CONTINUOUS_SCAN" in result.findings[0].reason


def test_image_scanning_fails_for_repositories_nothing_scans(aws, make_context):
    scanned = _repository(aws, "web", scan_on_push=True)
    unscanned = _repository(aws, "batch")
    result = run("ecr.image_scanning", make_context())
    assert result.status == Status.FAIL
    assert [f.resource for f in result.findings if f.status == Status.FAIL] == [unscanned]
    assert scanned in {f.resource for f in result.findings if f.status == Status.PASS}


def test_enhanced_scanning_ignores_repository_scan_on_push(aws, make_context):
    repository = _repository(aws, "legacy", scan_on_push=True)
    _registry_rules(aws, "ENHANCED", ("CONTINUOUS_SCAN", "prod-*"))
    result = run("ecr.image_scanning", make_context())
    assert result.status == Status.FAIL
    assert result.findings[0].resource == repository
    assert "no registry rule matches" in result.findings[0].reason


def test_no_repositories_is_not_applicable(aws, make_context):
    assert run("ecr.image_scanning", make_context()).status == Status.NOT_APPLICABLE
    assert run("ecr.inspector", make_context()).status == Status.NOT_APPLICABLE


def test_inspector_passes_when_ecr_scanning_is_enabled(aws, make_context):
    _repository(aws, "web")
    aws.client("inspector2").enable(accountIds=[ACCOUNT], resourceTypes=["ECR"])
    result = run("ecr.inspector", make_context())
    assert result.status == Status.PASS, result
    assert result.facts == {"inspector_ecr_status": "ENABLED"}


def test_inspector_fails_when_only_other_resource_types_are_enabled(aws, make_context):
    _repository(aws, "web")
    aws.client("inspector2").enable(accountIds=[ACCOUNT], resourceTypes=["EC2"])
    result = run("ecr.inspector", make_context())
    assert result.status == Status.FAIL
    assert result.findings[0].resource == ACCOUNT


def test_inspector_never_activated_fails(aws, make_context):
    # moto leaves a never-activated account out of the answer; AWS lists it as DISABLED.
    _repository(aws, "web")
    assert run("ecr.inspector", make_context()).status == Status.FAIL


def test_inspector_answering_500_without_a_code_is_an_error_not_a_pass(aws, make_context):
    # What moto (or a region without Inspector) answers for an unsupported JSON API.
    _repository(aws, "web")
    context = make_context()
    with Stubber(context.client("inspector2")) as stubber:
        stubber.add_client_error(
            "batch_get_account_status", service_error_code="", http_status_code=500
        )
        result = run("ecr.inspector", context)
    assert result.status == Status.ERROR
    assert "inspector2:BatchGetAccountStatus answered HTTP 500" in result.summary


def test_inspector_account_it_cannot_read_is_an_error(aws, make_context):
    _repository(aws, "web")
    context = make_context()
    with Stubber(context.client("inspector2")) as stubber:
        stubber.add_response(
            "batch_get_account_status",
            {
                "accounts": [],
                "failedAccounts": [
                    {"accountId": ACCOUNT, "errorCode": "ACCESS_DENIED", "errorMessage": "no"}
                ],
            },
        )
        result = run("ecr.inspector", context)
    assert result.status == Status.ERROR
    assert "ACCESS_DENIED" in result.summary
