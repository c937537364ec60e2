import datetime

import factory
from django.contrib.auth import get_user_model

from readiness.checklists import selectors, services
from readiness.checklists.models import Team

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")

    @factory.post_generation
    def members(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.members.add(*extracted)


def make_deployment(*, user, team=None, template=None, **fields):
    """A deployment created the way the app creates one (through the service)."""
    team = team or TeamFactory(members=[user])
    defaults = {
        "service": "payments-api",
        "environment": "production",
        "version": "2.4.0",
        "planned_date": datetime.date(2026, 12, 10),
    }
    return services.deployment_create(
        user=user,
        team=team,
        template=template or selectors.default_template(),
        **{**defaults, **fields},
    )


def set_aws_target(
    deployment,
    *,
    account_id: str = "123456789012",
    regions=("us-east-1",),
    role_arn: str = "",
    external_id: str = "",
    user=None,
):
    """Make the deployment's AWS target this one account, through the service (audited)."""
    from readiness.checklists.targets import AccountSpec, deployment_set_aws_target

    return deployment_set_aws_target(
        deployment=deployment,
        user=user or deployment.owner,
        accounts=[
            AccountSpec(
                account_id=account_id,
                regions=list(regions),
                role_arn=role_arn,
                external_id=external_id,
            )
        ],
    )


def grant(user, *permissions: str):
    """Give `user` Django permissions named "app_label.codename"."""
    from django.contrib.auth.models import Permission

    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user
