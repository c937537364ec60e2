"""What each probe corresponds to in the standards a security reviewer already knows: AWS
Security Hub controls (with how closely the probe's rule matches), Prowler checks, AWS Config
managed rules, and the AWS Well-Architected best practices (choice ids) of the item.

Kept as one table rather than in each `@probe` so a reviewer reads and diffs it in one place;
tests hold it to the registry (every probe has a row, no row names a missing probe) and
docs/controls.md is generated from it. A mapping is only listed where the rules really
correspond: "full" means the probe fails every resource the control fails, with the control's
default parameters (it may check more); "partial" says in its note what differs. Empty means
no counterpart was found, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Match(StrEnum):
    FULL = "full"
    PARTIAL = "partial"


@dataclass(frozen=True)
class Control:
    """One Security Hub control (its id in the AWS Foundational Security Best Practices or CIS
    standard, as Security Hub names it)."""

    id: str
    match: Match = Match.FULL
    note: str = ""

    def as_json(self) -> dict:
        return {"id": self.id, "match": str(self.match), "note": self.note}


@dataclass(frozen=True)
class Standards:
    security_hub: tuple[Control, ...] = ()
    prowler: tuple[str, ...] = ()
    config_rules: tuple[str, ...] = ()
    well_architected: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {
            "security_hub": [control.as_json() for control in self.security_hub],
            "prowler": list(self.prowler),
            "config_rules": list(self.config_rules),
            "well_architected": list(self.well_architected),
        }


NONE = Standards()
F, P = Match.FULL, Match.PARTIAL

# Well-Architected choice ids (the ids of the WA Tool's best practices) used below.
SEC_STRONG_SIGN_IN = "sec_identities_enforce_mechanisms"  # SEC02-BP01
SEC_SECRETS = "sec_identities_secrets"  # SEC02-BP03
SEC_AUDIT_CREDENTIALS = "sec_identities_audit"  # SEC02-BP05
SEC_GROUPS = "sec_identities_groups_attributes"  # SEC02-BP06
SEC_ROOT = "sec_securely_operate_aws_account"  # SEC01-BP02
SEC_PIPELINE_TESTS = "sec_securely_operate_test_validate_pipeline"  # SEC01-BP06
SEC_LEAST_PRIVILEGE = "sec_permissions_least_privileges"  # SEC03-BP02
SEC_GUARDRAILS = "sec_permissions_define_guardrails"  # SEC03-BP05
SEC_PUBLIC_ACCESS = "sec_permissions_analyze_cross_account"  # SEC03-BP07
SEC_LOGGING = "sec_detect_investigate_events_app_service_logging"  # SEC04-BP01
SEC_ANALYZE_LOGS = "sec_detect_investigate_events_analyze_all"  # SEC04-BP02
SEC_ACTIONABLE = "sec_detect_investigate_events_actionable_events"  # SEC04-BP04
SEC_NETWORK_LAYERS = "sec_network_protection_create_layers"  # SEC05-BP01
SEC_NETWORK_TRAFFIC = "sec_network_protection_layered"  # SEC05-BP02
SEC_NETWORK_AUTO = "sec_network_protection_auto_protect"  # SEC05-BP03
SEC_VULNERABILITIES = "sec_protect_compute_vulnerability_management"  # SEC06-BP01
SEC_DATA_AUTO_CLASSIFY = "sec_data_classification_auto_classification"  # SEC07-BP03
SEC_DATA_LIFECYCLE = "sec_data_classification_lifecycle_management"  # SEC07-BP04
SEC_KEY_MANAGEMENT = "sec_protect_data_rest_key_mgmt"  # SEC08-BP01
SEC_ENCRYPT_REST = "sec_protect_data_rest_encrypt"  # SEC08-BP02
SEC_CERTIFICATES = "sec_protect_data_transit_key_cert_mgmt"  # SEC09-BP01
SEC_ENCRYPT_TRANSIT = "sec_protect_data_transit_encrypt"  # SEC09-BP02
REL_MONITOR = "rel_monitor_aws_resources_monitor_resources"  # REL06-BP01
REL_BACKUPS = "rel_backing_up_data_automated_backups_data"  # REL09-BP03
REL_MULTI_LOCATION = "rel_fault_isolation_multiaz_region_system"  # REL10-BP01

SG_PROWLER = (
    "ec2_securitygroup_allow_ingress_from_internet_to_all_ports",
    "ec2_securitygroup_allow_ingress_from_internet_to_any_port",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22",
    "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_3389",
    "ec2_securitygroup_allow_ingress_from_internet_to_high_risk_tcp_ports",
)

PROBES: Mapping[str, Standards] = {
    "backup.disaster_recovery": Standards(well_architected=(REL_BACKUPS,)),
    "backup.strategy": Standards(
        security_hub=(
            Control("RDS.11"),
            Control("DynamoDB.2"),
        ),
        prowler=("rds_instance_backup_enabled", "dynamodb_tables_pitr_enabled"),
        config_rules=("db-instance-backup-enabled", "dynamodb-pitr-enabled"),
        well_architected=(REL_BACKUPS,),
    ),
    "cloudtrail.trail": Standards(
        security_hub=(
            Control("CloudTrail.1"),
            Control("CloudTrail.2"),
            Control("CloudTrail.4"),
            Control(
                "CloudTrail.6",
                P,
                "the probe reads the bucket's Block Public Access, not its policy and ACLs",
            ),
        ),
        prowler=(
            "cloudtrail_multi_region_enabled",
            "cloudtrail_kms_encryption_enabled",
            "cloudtrail_log_file_validation_enabled",
            "cloudtrail_logs_s3_bucket_is_not_publicly_accessible",
        ),
        config_rules=(
            "multi-region-cloudtrail-enabled",
            "cloud-trail-encryption-enabled",
            "cloud-trail-log-file-validation-enabled",
        ),
        well_architected=(SEC_LOGGING, SEC_ANALYZE_LOGS),
    ),
    "compliance.access_key_age": Standards(
        security_hub=(Control("IAM.3"),),
        prowler=("iam_rotate_access_key_90_days",),
        config_rules=("access-keys-rotated",),
        well_architected=(SEC_AUDIT_CREDENTIALS,),
    ),
    "compliance.backup_lifecycle": Standards(well_architected=(SEC_DATA_LIFECYCLE,)),
    "compliance.config_recorder": Standards(
        security_hub=(Control("Config.1", P, "the probe does not check the service-linked role"),),
        prowler=("config_recorder_all_regions_enabled",),
        well_architected=(SEC_ANALYZE_LOGS,),
    ),
    "compliance.data_residency": Standards(well_architected=(SEC_GUARDRAILS,)),
    "compliance.log_retention": Standards(
        security_hub=(Control("CloudWatch.16"),),
        prowler=("cloudwatch_log_group_retention_policy_specific_days_enabled",),
        config_rules=("cw-loggroup-retention-period-check",),
        well_architected=(SEC_DATA_LIFECYCLE,),
    ),
    "compliance.macie": Standards(
        security_hub=(Control("Macie.1"),),
        prowler=("macie_is_enabled",),
        config_rules=("macie-status-check",),
        well_architected=(SEC_DATA_AUTO_CLASSIFY,),
    ),
    "compliance.password_policy": Standards(
        security_hub=(
            Control("IAM.15"),
            Control("IAM.7", P, "the probe checks the length only, not character classes"),
        ),
        prowler=("iam_password_policy_minimum_length_14",),
        config_rules=("iam-password-policy",),
        well_architected=(SEC_STRONG_SIGN_IN,),
    ),
    "compliance.root_keys": Standards(
        security_hub=(Control("IAM.4"),),
        prowler=("iam_no_root_access_key",),
        config_rules=("iam-root-access-key-check",),
        well_architected=(SEC_ROOT,),
    ),
    "compliance.s3_account_public_access": Standards(
        security_hub=(Control("S3.1"),),
        prowler=("s3_account_level_public_access_blocks",),
        config_rules=("s3-account-level-public-access-blocks-periodic",),
        well_architected=(SEC_PUBLIC_ACCESS,),
    ),
    "compliance.trail_bucket_logging": Standards(
        security_hub=(Control("CloudTrail.7"),),
        prowler=("cloudtrail_logs_s3_bucket_access_logging_enabled",),
        well_architected=(SEC_LOGGING,),
    ),
    "compliance.trail_bucket_retention": NONE,
    "compliance.user_policies": Standards(
        security_hub=(Control("IAM.2"),),
        prowler=("iam_policy_attached_only_to_group_or_roles",),
        config_rules=("iam-user-no-policies-check",),
        well_architected=(SEC_GROUPS,),
    ),
    "cost.anomaly_detection": NONE,
    "cost.budgets": NONE,
    "cost.commitments": NONE,
    "cost.dev_toggles": NONE,
    "cost.nat_endpoints": NONE,
    "cost.right_sizing": NONE,
    "cost.s3_lifecycle": NONE,
    "delivery.blue_green": NONE,
    "delivery.canary": NONE,
    "delivery.feature_flags": NONE,
    "delivery.pipelines": NONE,
    "ecr.image_scanning": Standards(
        security_hub=(Control("ECR.1"),),
        prowler=("ecr_repositories_scan_images_on_push_enabled",),
        config_rules=("ecr-private-image-scanning-enabled",),
        well_architected=(SEC_PIPELINE_TESTS, SEC_VULNERABILITIES),
    ),
    "ecr.inspector": Standards(
        security_hub=(Control("Inspector.2"),),
        prowler=("inspector2_is_enabled",),
        well_architected=(SEC_VULNERABILITIES,),
    ),
    "encryption.acm": Standards(
        security_hub=(
            Control(
                "ACM.1",
                P,
                "the control judges every certificate against its threshold; the probe only "
                "those in use (an unused one fails only once expired)",
            ),
        ),
        prowler=("acm_certificates_expiration_check",),
        config_rules=("acm-certificate-expiration-check",),
        well_architected=(SEC_CERTIFICATES,),
    ),
    "encryption.cloudfront": Standards(
        security_hub=(Control("CloudFront.3"),),
        prowler=(
            "cloudfront_distributions_https_enabled",
            "cloudfront_distributions_using_deprecated_ssl_protocols",
        ),
        config_rules=("cloudfront-viewer-policy-https",),
        well_architected=(SEC_ENCRYPT_TRANSIT,),
    ),
    "encryption.dynamodb": Standards(
        prowler=("dynamodb_tables_kms_cmk_encryption_enabled",),
        config_rules=("dynamodb-table-encrypted-kms",),
        well_architected=(SEC_ENCRYPT_REST,),
    ),
    "encryption.ebs": Standards(
        security_hub=(Control("EC2.3"), Control("EC2.7")),
        prowler=("ec2_ebs_volume_encryption", "ec2_ebs_default_encryption"),
        config_rules=("encrypted-volumes", "ec2-ebs-encryption-by-default"),
        well_architected=(SEC_ENCRYPT_REST,),
    ),
    "encryption.kms_rotation": Standards(
        security_hub=(Control("KMS.4"),),
        prowler=("kms_cmk_rotation_enabled",),
        config_rules=("cmk-backing-key-rotation-enabled",),
        well_architected=(SEC_KEY_MANAGEMENT, SEC_AUDIT_CREDENTIALS),
    ),
    "encryption.load_balancers": Standards(
        security_hub=(
            Control("ELB.1", P, "the probe also accepts an HTTPS listener in place of a redirect"),
            Control("ELB.3", P, "the probe also requires a TLS 1.2+ policy"),
        ),
        prowler=(
            "elbv2_ssl_listeners",
            "elb_ssl_listeners",
            "elbv2_insecure_ssl_ciphers",
            "elb_insecure_ssl_ciphers",
        ),
        config_rules=("alb-http-to-https-redirection-check", "elb-tls-https-listeners-only"),
        well_architected=(SEC_ENCRYPT_TRANSIT,),
    ),
    "encryption.rds": Standards(
        security_hub=(Control("RDS.3"), Control("RDS.27")),
        prowler=("rds_instance_storage_encrypted",),
        config_rules=("rds-storage-encrypted", "rds-cluster-encrypted-at-rest"),
        well_architected=(SEC_ENCRYPT_REST,),
    ),
    "encryption.s3_at_rest": Standards(
        security_hub=(Control("S3.17"),),
        prowler=("s3_bucket_kms_encryption",),
        config_rules=("s3-default-encryption-kms",),
        well_architected=(SEC_ENCRYPT_REST,),
    ),
    "encryption.s3_in_transit": Standards(
        security_hub=(Control("S3.5"),),
        prowler=("s3_bucket_secure_transport_policy",),
        config_rules=("s3-bucket-ssl-requests-only",),
        well_architected=(SEC_ENCRYPT_TRANSIT,),
    ),
    "iam.least_privilege": Standards(
        security_hub=(
            Control(
                "IAM.1",
                P,
                "the control judges customer managed policies; the probe every policy a user, "
                "group or role holds, and NotAction too",
            ),
        ),
        prowler=(
            "iam_aws_attached_policy_no_administrative_privileges",
            "iam_customer_attached_policy_no_administrative_privileges",
            "iam_inline_policy_no_administrative_privileges",
        ),
        config_rules=("iam-policy-no-statements-with-admin-access",),
        well_architected=(SEC_LEAST_PRIVILEGE,),
    ),
    "iam.mfa": Standards(
        security_hub=(Control("IAM.5"), Control("IAM.9")),
        prowler=("iam_user_mfa_enabled_console_access", "iam_root_mfa_enabled"),
        config_rules=("mfa-enabled-for-iam-console-access", "root-account-mfa-enabled"),
        well_architected=(SEC_STRONG_SIGN_IN, SEC_ROOT),
    ),
    "monitoring.cloudtrail_cloudwatch_logs": Standards(
        security_hub=(
            Control(
                "CloudTrail.5",
                P,
                "the control judges every trail; the probe asks for one logging multi-region "
                "trail that delivers",
            ),
        ),
        prowler=("cloudtrail_cloudwatch_logging_enabled",),
        config_rules=("cloud-trail-cloud-watch-logs-enabled",),
        well_architected=(SEC_LOGGING, REL_MONITOR),
    ),
    "monitoring.cloudwatch_alarms": Standards(
        security_hub=(Control("CloudWatch.15"), Control("CloudWatch.17")),
        prowler=(
            "cloudwatch_alarm_actions_alarm_state_configured",
            "cloudwatch_alarm_actions_enabled",
        ),
        config_rules=("cloudwatch-alarm-action-check", "cloudwatch-alarm-action-enabled-check"),
        well_architected=(REL_MONITOR, SEC_ACTIONABLE),
    ),
    "monitoring.dashboards": Standards(well_architected=(REL_MONITOR,)),
    "monitoring.load_balancer_access_logs": Standards(
        security_hub=(
            Control(
                "ELB.5",
                P,
                "the probe judges Application and TLS Network Load Balancers, not Classic ones",
            ),
        ),
        prowler=("elbv2_logging_enabled",),
        config_rules=("elb-logging-enabled",),
        well_architected=(SEC_LOGGING,),
    ),
    "monitoring.log_groups": Standards(well_architected=(SEC_LOGGING,)),
    "monitoring.sns_subscriptions": Standards(well_architected=(SEC_ACTIONABLE,)),
    "monitoring.synthetic_checks": Standards(well_architected=(REL_MONITOR,)),
    "monitoring.vpc_flow_logs": Standards(
        security_hub=(
            Control(
                "EC2.6",
                P,
                "the control asks for REJECT traffic logged; the probe accepts any active flow "
                "log, ACCEPT-only too",
            ),
        ),
        prowler=("vpc_flow_logs_enabled",),
        config_rules=("vpc-flow-logs-enabled",),
        well_architected=(SEC_LOGGING, SEC_ANALYZE_LOGS),
    ),
    "monitoring.xray_tracing": Standards(
        security_hub=(
            Control("APIGateway.3", P, "the probe also judges Lambda and recent traces"),
        ),
        config_rules=("api-gw-xray-enabled",),
        well_architected=(REL_MONITOR,),
    ),
    "network.ec2_private": Standards(
        security_hub=(Control("EC2.9"),),
        prowler=("ec2_instance_public_ip",),
        config_rules=("ec2-instance-no-public-ip",),
        well_architected=(SEC_NETWORK_LAYERS, SEC_PUBLIC_ACCESS),
    ),
    "network.rds_private": Standards(
        security_hub=(Control("RDS.2"),),
        prowler=("rds_instance_no_public_access",),
        config_rules=("rds-instance-public-access-check",),
        well_architected=(SEC_NETWORK_LAYERS, SEC_PUBLIC_ACCESS),
    ),
    "network.security_groups": Standards(
        security_hub=(
            Control("EC2.18"),
            Control("EC2.19"),
            Control("EC2.13"),
            Control("EC2.14"),
            Control("EC2.53"),
            Control("EC2.54"),
        ),
        prowler=SG_PROWLER,
        config_rules=(
            "vpc-sg-open-only-to-authorized-ports",
            "restricted-common-ports",
            "restricted-ssh",
            "vpc-sg-port-restriction-check",
        ),
        well_architected=(SEC_NETWORK_TRAFFIC, SEC_NETWORK_AUTO),
    ),
    "network.vpc_private_subnets": Standards(well_architected=(SEC_NETWORK_LAYERS,)),
    "operational.runbooks": NONE,
    "performance.apigw_cache": NONE,
    "performance.cache": NONE,
    "performance.cloudfront": Standards(
        security_hub=(Control("CloudFront.3"), Control("CloudFront.5"), Control("CloudFront.6")),
        prowler=(
            "cloudfront_distributions_https_enabled",
            "cloudfront_distributions_logging_enabled",
            "cloudfront_distributions_using_waf",
        ),
        config_rules=(
            "cloudfront-viewer-policy-https",
            "cloudfront-accesslogs-enabled",
            "cloudfront-associated-with-waf",
        ),
    ),
    "performance.right_sizing": NONE,
    "resilience.auto_scaling": NONE,
    "resilience.health_checks": Standards(
        security_hub=(Control("AutoScaling.1"),),
        config_rules=("autoscaling-group-elb-healthcheck-required",),
        well_architected=(REL_MONITOR,),
    ),
    "resilience.multi_az": Standards(
        security_hub=(
            Control("RDS.5"),
            Control("RDS.15"),
            Control("AutoScaling.2"),
            Control("ELB.13"),
        ),
        prowler=("rds_instance_multi_az", "autoscaling_group_multiple_az"),
        config_rules=(
            "rds-multi-az-support",
            "rds-cluster-multi-az-enabled",
            "autoscaling-multiple-az",
            "elbv2-multiple-az",
        ),
        well_architected=(REL_MULTI_LOCATION,),
    ),
    "resilience.rto_rpo": NONE,
    "secrets.ec2_user_data": Standards(
        prowler=("ec2_instance_secrets_user_data",), well_architected=(SEC_SECRETS,)
    ),
    "secrets.ecs_task_environment": Standards(
        security_hub=(
            Control(
                "ECS.8",
                P,
                "the control looks for the variables AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
                "and ECS_ENGINE_AUTH_DATA; the probe for literal secret values",
            ),
        ),
        prowler=("ecs_task_definitions_no_environment_secrets",),
        config_rules=("ecs-no-environment-secrets",),
        well_architected=(SEC_SECRETS,),
    ),
    "secrets.lambda_environment": Standards(
        prowler=("awslambda_function_no_secrets_in_variables",), well_architected=(SEC_SECRETS,)
    ),
    "secrets.rotation": Standards(
        security_hub=(Control("SecretsManager.1"),),
        prowler=("secretsmanager_automatic_rotation_enabled",),
        config_rules=("secretsmanager-rotation-enabled-check",),
        well_architected=(SEC_SECRETS, SEC_AUDIT_CREDENTIALS),
    ),
    "secrets.ssm_secure_string": Standards(well_architected=(SEC_SECRETS,)),
}


def standards_of(key: str) -> Standards:
    return PROBES.get(key, NONE)


def _cell(values: list[str]) -> str:
    return "<br>".join(f"`{value}`" for value in values) or "—"


def controls_markdown(probes: Mapping[str, tuple[str, str]]) -> str:
    """docs/controls.md: one row per probe (key → (section, item)), from this table."""
    lines = [
        "# Probes and the standards they map to",
        "",
        "Generated from `readiness/probes/standards.py`: after changing it, run "
        "`.venv/bin/python -m readiness.probes.standards > docs/controls.md` (a test fails "
        "while they differ). A Security Hub control marked *partial* says how the probe's "
        "rule differs from the control's; the others are *full*: the probe fails every "
        "resource the control fails, with the control's default parameters (it may check "
        "more). A dash means no counterpart was found.",
        "",
        "| Probe | Item | Security Hub | Prowler | AWS Config rules | Well-Architected |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, (section, item) in sorted(probes.items()):
        found = standards_of(key)
        hub = "<br>".join(
            f"`{control.id}`" + (f" (partial: {control.note})" if control.match == P else "")
            for control in found.security_hub
        )
        lines.append(
            f"| `{key}` | {section} / {item} | {hub or '—'} | {_cell(list(found.prowler))} | "
            f"{_cell(list(found.config_rules))} | {_cell(list(found.well_architected))} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import readiness.probes  # noqa: F401  (registers every probe)
    from readiness.probes.base import registry

    print(controls_markdown({key: (p.section, p.item) for key, p in registry().items()}), end="")
