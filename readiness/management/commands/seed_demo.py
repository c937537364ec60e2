import datetime
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from readiness.checklists import selectors, services
from readiness.checklists.models import Deployment, ItemStatus, Team
from signoff.lifecycle import services as signoff_services
from signoff.teams.models import Role, RoleMembership

DEMO_USERS = (
    # username, first name, last name, staff, sign-off role in the demo team
    ("admin", "Ada", "Admin", True, None),
    ("lead", "Lee", "Tran", False, "Tech Lead"),
    ("security", "Jane", "Doe", False, "Security"),
    ("devops", "Dev", "Okafor", False, "DevOps"),
    ("product", "Priya", "Shah", False, "Product"),
)
DEMO_TEAM = "Payments"


class Command(BaseCommand):
    help = (
        "Create demo users (passwords generated once and kept in DATA_DIR), a Payments team and "
        "three demo deployments: one with a few items filled in, one in review with real "
        "sign-offs (Security approved, DevOps's gone stale), one signed by all four roles, "
        "deployed and verified (the workers make its records). Safe to re-run."
    )

    def handle(self, *args, **options):
        credentials_file = settings.DATA_DIR / "demo-credentials.txt"
        passwords = {}
        if credentials_file.exists():
            for line in credentials_file.read_text().splitlines():
                username, _, password = line.partition(" ")
                passwords[username] = password
        with transaction.atomic():
            users = self._users(passwords)
            team = self._team(users)
            self._deployment(team, users)
            self._in_review(team, users, passwords)
            self._verified(team, users, passwords)
        credentials_file.touch(mode=0o600)
        credentials_file.write_text("".join(f"{u} {p}\n" for u, p in passwords.items()))
        self.stdout.write(self.style.SUCCESS(f"Demo users (also in {credentials_file}):"))
        for username, *_ in DEMO_USERS:
            self.stdout.write(f"  {username:<9} {passwords[username]}")

    def _users(self, passwords: dict) -> dict:
        user_model = get_user_model()
        users = {}
        for username, first, last, staff, _role in DEMO_USERS:
            user, created = user_model.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@example.com",
                    "is_staff": staff,
                    "is_superuser": staff,
                },
            )
            if created or username not in passwords:
                passwords[username] = secrets.token_urlsafe(9)
                user.set_password(passwords[username])
                user.save(update_fields=["password"])
            users[username] = user
        return users

    def _team(self, users: dict) -> Team:
        team, _ = Team.objects.get_or_create(name=DEMO_TEAM, defaults={"slug": "payments"})
        team.members.add(*users.values())
        for username, *_names, role in DEMO_USERS:
            if role:
                RoleMembership.objects.get_or_create(
                    team=team, user=users[username], role=Role.objects.get(name=role)
                )
        return team

    def _deployment(self, team: Team, users: dict) -> None:
        lead = users["lead"]
        # Only holders of an item's owning role fill it in.
        owners = {"Security": users["security"], "DevOps": users["devops"]}
        if Deployment.objects.filter(team=team, service="payments-api").exists():
            return
        deployment = services.deployment_create(
            user=lead,
            team=team,
            template=selectors.default_template(),
            service="payments-api",
            environment="production",
            version="2.4.0",
            planned_date=datetime.date(2026, 12, 10),
        )
        filled = {
            "Secrets Management": (
                ItemStatus.DONE,
                "No credentials in the repository; Gitleaks clean.",
                "",
            ),
            "Penetration Test": (
                ItemStatus.NOT_APPLICABLE,
                "",
                "No externally reachable change in this release.",
            ),
            "Unit Tests": (ItemStatus.DONE, "Line coverage 86% on main.", ""),
            "Load Testing": (
                ItemStatus.FAILED,
                "p99 latency 1.8 s at 2x traffic; target 800 ms.",
                "",
            ),
        }
        for section in selectors.deployment_sections(deployment):
            for item in section.items.all():
                if item.title in filled:
                    status, note, reason = filled[item.title]
                    owner = item.owner_role.name if item.owner_role else ""
                    services.item_update(
                        item=item,
                        user=owners.get(owner, lead),
                        expected_version=item.version,
                        status=status,
                        note=note,
                        evidence_url="",
                        na_reason=reason,
                    )

    def _in_review(self, team: Team, users: dict, passwords: dict) -> None:
        """A deployment under review: Security approved with a waiver, DevOps signed and then
        an item changed, so its sign-off shows stale with what changed."""
        if Deployment.objects.filter(team=team, service="ledger-service").exists():
            return
        lead, security, devops = users["lead"], users["security"], users["devops"]
        deployment = services.deployment_create(
            user=lead,
            team=team,
            template=selectors.default_template(),
            service="ledger-service",
            environment="production",
            version="1.9.0",
            planned_date=datetime.date(2026, 12, 17),
        )
        items = {
            item.title: item
            for section in selectors.deployment_sections(deployment)
            for item in section.items.all()
        }
        notes = {
            "MFA": "Enforced by the AWS SSO permission set; break-glass user has a hardware key.",
            "Backup Strategy": "AWS Backup daily, 35-day retention; restore drill 2026-11-20.",
            "Encryption at Rest": "KMS CMK alias/ledger on RDS, S3 and EBS.",
        }
        for item in items.values():
            owner = item.owner_role.name if item.owner_role else ""
            if owner not in ("Security", "DevOps") or item.title == "Penetration Test":
                continue
            services.item_update(
                item=item,
                user=security if owner == "Security" else devops,
                expected_version=item.version,
                status=ItemStatus.DONE,
                note=notes.get(item.title, ""),
                evidence_url="",
                na_reason="",
            )
        signoff_services.signoff_request(deployment=deployment, user=lead)
        signoff_services.waiver_grant(
            item=items["Penetration Test"],
            user=security,
            reason="External test booked for 2027-01-08; no new public endpoint in this release.",
            expires_at=timezone.now() + datetime.timedelta(days=45),
        )
        for user, role in ((security, "Security"), (devops, "DevOps")):
            signoff_services.signoff_record(
                deployment=deployment,
                role=Role.objects.get(name=role),
                user=user,
                meaning="approve",
                comment="",
                password=passwords[user.username],
                username=user.username,
            )
        backup = items["Backup Strategy"]
        backup.refresh_from_db()
        services.item_update(
            item=backup,
            user=devops,
            expected_version=backup.version,
            status=ItemStatus.FAILED,
            note="Restore drill of 2026-11-27 failed: snapshot older than the RPO.",
            evidence_url="",
            na_reason="",
            reason="The restore drill after sign-off failed; DevOps looks again.",
        )

    def _verified(self, team: Team, users: dict, passwords: dict) -> None:
        """A release taken all the way: every item settled, four approvals, deployed, the
        post-deployment checks recorded. The workers render its records once they start."""
        if Deployment.objects.filter(team=team, service="checkout-web").exists():
            return
        lead = users["lead"]
        owners = {"Security": users["security"], "DevOps": users["devops"]}
        deployment = services.deployment_create(
            user=lead,
            team=team,
            template=selectors.default_template(),
            service="checkout-web",
            environment="production",
            version="3.1.0",
            planned_date=datetime.date(2026, 11, 24),
        )
        not_applicable = {
            "Blue/Green Deployment": "Canary releases cover this service.",
            "Distributed Tracing": "Single service without downstream calls.",
            "Feature Flags": "No flagged features in this release.",
        }
        for section in selectors.deployment_sections(deployment):
            for item in section.items.all():
                owner = item.owner_role.name if item.owner_role else ""
                reason = not_applicable.get(item.title, "")
                services.item_update(
                    item=item,
                    user=owners.get(owner, lead),
                    expected_version=item.version,
                    status=ItemStatus.NOT_APPLICABLE if reason else ItemStatus.DONE,
                    note="" if reason else "Checked for 3.1.0.",
                    evidence_url="",
                    na_reason=reason,
                )
        signoff_services.signoff_request(deployment=deployment, user=lead)
        for username, role, meaning, comment in (
            ("lead", "Tech Lead", "approve", ""),
            ("security", "Security", "approve", ""),
            ("devops", "DevOps", "approve", ""),
            ("product", "Product", "approve_with_conditions", "Announce after 18:00 UTC."),
        ):
            signoff_services.signoff_record(
                deployment=deployment,
                role=Role.objects.get(name=role),
                user=users[username],
                meaning=meaning,
                comment=comment,
                password=passwords[username],
                username=username,
            )
        signoff_services.deployment_mark_deployed(
            deployment=deployment, user=users["devops"], deployed_at=timezone.now()
        )
        notes = (
            "Smoke suite green in 4 min.",
            "Dashboards and alarms receive data.",
            "No alarms in the first hour.",
        )
        for check, note in zip(
            deployment.post_deployment_checks.order_by("position"), notes, strict=False
        ):
            signoff_services.post_check_record(check=check, user=users["devops"], note=note)
