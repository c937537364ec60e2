import pytest

from readiness.checklists import markdown_import
from readiness.checklists.markdown_import import TemplateImportError, parse
from readiness.checklists.models import ChecklistTemplate, TemplateItem, TemplateSection
from readiness.checklists.selectors import default_template
from readiness.checklists.services import DEFAULT_TEMPLATE_FILE, template_import

SEED = DEFAULT_TEMPLATE_FILE.read_text(encoding="utf-8")

# The seed, transcribed by hand: section → (title, description) in order.
EXPECTED = {
    "Security": [
        ("IAM Policies", "All roles follow least privilege principle"),
        ("Encryption", "Data encrypted at rest (KMS) and in transit (TLS)"),
        ("Secrets Management", "No hardcoded credentials"),
        ("Network Isolation", "Resources in private subnets where appropriate"),
        ("Security Groups", "Ingress restricted to known sources"),
        ("MFA", "Enabled for privileged accounts"),
        ("CloudTrail", "Enabled and logging to secure S3 bucket"),
        ("Security Scan", "Passed Gitleaks/Trivy scan"),
        ("Penetration Test", "Completed (if required)"),
    ],
    "Reliability": [
        ("Multi-AZ", "Critical resources deployed across AZs"),
        ("Auto Scaling", "Configured for compute resources"),
        ("Health Checks", "Load balancer health checks configured"),
        ("RTO/RPO", "Defined and documented"),
        ("Backup Strategy", "Automated backups enabled"),
        ("Disaster Recovery", "DR plan documented and tested"),
    ],
    "Performance": [
        ("Load Testing", "Completed under expected traffic"),
        ("Resource Sizing", "Instances right-sized for workload"),
        ("Caching", "Implemented where appropriate"),
        ("Database Indexing", "Optimized for queries"),
        ("CDN", "Configured for static assets (if applicable)"),
    ],
    "Cost Optimization": [
        ("Budget Alerts", "AWS Budget configured"),
        ("Cost Anomaly Detection", "Enabled"),
        ("Reserved Instances", "Evaluated for steady-state workloads"),
        ("Right-Sizing", "Instances match actual usage"),
        ("Lifecycle Policies", "S3 transitions configured"),
        ("NAT Optimization", "Evaluated alternatives (VPC endpoints)"),
        ("Development Toggles", "Cost-saving features for non-prod"),
    ],
    "Monitoring & Observability": [
        ("CloudWatch Alarms", "Critical metrics monitored"),
        ("SNS Notifications", "Alerts routed to team"),
        ("Log Aggregation", "CloudWatch Logs or equivalent"),
        ("Dashboards", "Created for key metrics"),
        ("Distributed Tracing", "X-Ray enabled (if applicable)"),
        ("Synthetic Monitoring", "Health check from external location"),
    ],
    "Compliance": [
        ("Data Residency", "Data stored in approved regions"),
        ("Audit Logging", "Comprehensive audit trail"),
        ("Access Control", "Role-based access implemented"),
        ("Retention Policies", "Comply with regulations"),
        ("Privacy", "PII handling documented"),
    ],
    "Operational": [
        ("Runbook", "Created in `docs/runbook.md`"),
        ("Troubleshooting Guide", "Created in `docs/troubleshooting.md`"),
        ("On-Call Rotation", "Defined"),
        ("Rollback Plan", "Documented and tested"),
        ("Change Management", "Process defined"),
        ("Documentation", "All docs up to date"),
        ("Diagrams", "Architecture diagrams accurate"),
    ],
    "Testing": [
        ("Unit Tests", "80%+ coverage"),
        ("Integration Tests", "Pass on deployed stack"),
        ("E2E Tests", "Critical paths validated"),
        ("Smoke Tests", "Post-deployment validation"),
        ("Performance Tests", "Under load"),
        ("Chaos Engineering", "Failure scenarios tested (optional)"),
    ],
    "Deployment": [
        ("CI/CD Pipeline", "Fully automated"),
        ("Blue/Green Deployment", "Configured (if applicable)"),
        ("Canary Deployment", "Configured (if applicable)"),
        ("Feature Flags", "Implemented for risky features"),
        ("Database Migrations", "Tested and reversible"),
    ],
}


def test_expected_table_matches_the_shipped_seed_file_and_the_shared_seed():
    shared = DEFAULT_TEMPLATE_FILE.parents[3] / "shared" / "seed"
    shared_seed = shared / "production-readiness-checklist.md"
    if shared_seed.exists():  # the project's own copy must not drift from the user's file
        assert shared_seed.read_text(encoding="utf-8") == SEED
    for section, items in EXPECTED.items():
        for title, description in items:
            assert f"- [ ] **{title}:** {description}\n" in SEED, (section, title)


def test_seed_parses_to_nine_sections_and_56_items_word_for_word_in_order():
    parsed = parse(SEED)
    assert parsed.name == "Production Readiness Checklist"
    assert parsed.introduction == "Use this checklist before deploying to production."
    assert [s.title for s in parsed.sections] == list(EXPECTED)
    assert parsed.item_count == 56
    for section in parsed.sections:
        assert [(i.title, i.description) for i in section.items] == EXPECTED[section.title]


def test_seed_keeps_sign_off_roles_deployment_date_and_post_deployment_notes():
    parsed = parse(SEED)
    assert parsed.sign_off_roles == ("Tech Lead", "Security", "DevOps", "Product")
    assert parsed.has_deployment_date
    assert parsed.post_deployment_items == (
        "Smoke tests passed",
        "Monitoring confirmed working",
        "No critical alarms",
    )


def test_qualifiers_are_recognised_and_the_description_is_kept_whole():
    qualified = {
        item.title: item.qualifier
        for section in parse(SEED).sections
        for item in section.items
        if item.qualifier
    }
    assert qualified == {
        "Penetration Test": "if required",
        "CDN": "if applicable",
        "Distributed Tracing": "if applicable",
        "Chaos Engineering": "optional",
        "Blue/Green Deployment": "if applicable",
        "Canary Deployment": "if applicable",
    }


@pytest.mark.django_db
def test_data_migration_loads_the_seed_as_the_default_template():
    template = default_template()
    assert template.name == "Production Readiness Checklist"
    assert template.version == 1
    assert template.source == SEED
    sections = list(template.sections.order_by("position"))
    assert [s.title for s in sections] == list(EXPECTED)
    for section in sections:
        items = list(section.items.order_by("position").values_list("title", "description"))
        assert items == EXPECTED[section.title]
    assert TemplateItem.objects.filter(section__template=template).count() == 56
    assert template.sign_off_roles == ["Tech Lead", "Security", "DevOps", "Product"]
    assert template.post_deployment_items == [
        "Smoke tests passed",
        "Monitoring confirmed working",
        "No critical alarms",
    ]


@pytest.mark.django_db
def test_importing_the_same_file_twice_is_idempotent_and_a_changed_file_is_a_new_version():
    source = "# Small\n\n## One\n\n- [ ] **A:** first\n- [ ] **B:** second\n"
    first = template_import(source=source)
    again = template_import(source=source.replace("\n", "\r\n") + "\n\n")
    assert first.created and not again.created
    assert again.template.pk == first.template.pk
    changed = template_import(source=source + "- [ ] **C:** third\n")
    assert changed.created
    assert changed.template.version == 2
    assert ChecklistTemplate.objects.filter(name="Small").count() == 2
    assert changed.template.sections.get().items.count() == 3


@pytest.mark.django_db
def test_import_template_command_reports_and_is_safe_to_rerun(tmp_path):
    from django.core.management import call_command

    path = tmp_path / "ops.md"
    path.write_text("# Ops\n\n## Runbooks\n\n- [ ] **Pager:** set up (optional)\n")
    from io import StringIO

    out = StringIO()
    call_command("import_template", str(path), stdout=out)
    call_command("import_template", str(path), stdout=out)
    assert "Imported: Ops v1 (1 sections, 1 items)" in out.getvalue()
    assert "Already imported: Ops v1" in out.getvalue()
    item = TemplateItem.objects.get(section__template__name="Ops")
    assert item.qualifier == "optional"


@pytest.mark.django_db
def test_import_template_command_fails_with_the_line_and_imports_nothing(tmp_path):
    from django.core.management import CommandError, call_command

    path = tmp_path / "bad.md"
    path.write_text("# Bad\n\n- [ ] **Orphan:** no section\n\n## S\n\n- [ ] **A:** x\n")
    before = TemplateSection.objects.count()
    with pytest.raises(CommandError, match="line 3: a checklist item outside a section"):
        call_command("import_template", str(path))
    assert TemplateSection.objects.count() == before
    assert not ChecklistTemplate.objects.filter(name="Bad").exists()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("# T\n\nJust prose.\n", "no sections found"),
        ("# T\n- [ ] **A:** outside\n## S\n- [ ] **B:** ok\n", "line 2: a checklist item outside"),
        (
            "# T\n## S\n- [ ] **A:** one\n- [ ] **a:** two\n",
            "line 4: duplicate item 'a' in section 'S' (first on line 3)",
        ),
        ("# T\n## S\n- [ ] **A:** one\n## S\n- [ ] **B:** x\n", "line 4: duplicate section 'S'"),
        ("# T\n## S\n- [ ] no bold title\n", "line 3: a checklist item must read"),
        ("# T\n## Empty\n## S\n- [ ] **A:** x\n", "line 2: section 'Empty' has no items"),
        ("# T\n## S\n- [ ] **" + "x" * 201 + ":** y\n", "line 3: item title is over 200"),
        ("# T\n## S\n- [ ] **A:** x\n# Second\n", "line 4: a second '# ' title"),
        ("## S\n- [ ] **A:** x\n", "line 1: no '# Title' line and no name given"),
    ],
)
def test_malformed_markdown_is_refused_with_the_line(source, message):
    with pytest.raises(TemplateImportError) as caught:
        parse(source)
    assert message in str(caught.value)


def test_every_error_is_reported_not_just_the_first():
    with pytest.raises(TemplateImportError) as caught:
        parse("# T\n- [ ] **A:** out\n## S\n- [ ] **B:** x\n- [ ] **B:** y\n- [ ] bare\n")
    assert [error.line for error in caught.value.errors] == [2, 5, 6]


def test_a_huge_file_is_refused_before_parsing():
    with pytest.raises(TemplateImportError, match="the limit is 262,144 bytes"):
        markdown_import.decode(b"x" * (markdown_import.MAX_BYTES + 1))


def test_non_utf8_bytes_are_refused_naming_the_line():
    with pytest.raises(TemplateImportError, match="line 3: the file is not UTF-8"):
        markdown_import.decode(b"# T\n## S\n- [ ] **A:** caf\xe9\n")


def test_binary_content_is_refused():
    with pytest.raises(TemplateImportError, match="binary"):
        markdown_import.decode(b"# T\x00\x01\x02")


def test_alternative_bold_colon_placement_and_checked_boxes_are_accepted():
    parsed = parse("# T\n## S\n- [x] **Done thing**: already ticked\n* [ ] **Other:** star\n")
    assert [(i.title, i.description) for i in parsed.sections[0].items] == [
        ("Done thing", "already ticked"),
        ("Other", "star"),
    ]


def test_a_template_without_a_sign_off_table_gets_the_four_seed_roles():
    parsed = parse("# T\n## S\n- [ ] **A:** x\n")
    assert parsed.sign_off_roles == ("Tech Lead", "Security", "DevOps", "Product")
    assert parsed.post_deployment_items == ()


def test_markdown_in_descriptions_and_remediations_renders_and_html_stays_escaped():
    from readiness.templatetags.readiness_tags import markdown_inline as md

    assert md("Created in `docs/runbook.md`") == "Created in <code>docs/runbook.md</code>"
    assert md("<b>`x<y`</b>") == "&lt;b&gt;<code>x&lt;y</code>&lt;/b&gt;"
    assert md("*every* trail") == "<em>every</em> trail"
    assert md("[docs](https://aws.amazon.com/x)") == '<a href="https://aws.amazon.com/x">docs</a>'
    # Links markdown-it refuses stay text; images never load.
    assert "<a" not in md("[x](javascript:alert(1))")
    assert "<img" not in md("![x](https://example.com/x.png)")
    assert md("s3_bucket_name and Action: *") == "s3_bucket_name and Action: *"
