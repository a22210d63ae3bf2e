from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class PartnershipsConfig(AppConfig):
    name = "partnerships"
    verbose_name = "Partnerships"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401

        post_migrate.connect(_roles_ensure, sender=self, dispatch_uid="partnerships.roles")


def _roles_ensure(*, using: str, verbosity: int = 1, **kwargs) -> None:
    """Pilot's roles, after every migrate. The auth app creates each app's permissions as that
    app's post_migrate comes round, and the apps after this one have not had theirs yet: they
    are created here first (it is idempotent)."""
    from django.contrib.auth.management import create_permissions

    from .roles import roles_ensure

    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    roles_ensure()
