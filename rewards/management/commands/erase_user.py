import uuid

from django.core.management.base import BaseCommand, CommandError

from config.errors import ApplicationError
from partnerships.models import Partnership
from rewards.services.users import EndUserEraseError, end_user_erase, end_user_find


class Command(BaseCommand):
    help = (
        "Erases an end user (GDPR): attributes and external id removed, events' contexts "
        "cleared, rewards kept. Audited as enduser.erase (actor: system)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("partnership_id")
        parser.add_argument("external_user_id")

    def handle(self, *args, **options) -> None:
        try:
            partnership = Partnership.objects.get(pk=uuid.UUID(options["partnership_id"]))
        except (ValueError, Partnership.DoesNotExist) as exc:
            raise CommandError(f"No partnership {options['partnership_id']!r}") from exc
        try:
            user = end_user_find(
                partnership_id=partnership.pk, external_user_id=options["external_user_id"]
            )
        except ApplicationError as exc:
            raise CommandError("This user is already erased") from exc
        if user is None:
            raise CommandError("No user with this external id in the partnership")
        try:
            erased = end_user_erase(end_user=user, via="command")
        except EndUserEraseError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Erased user {erased.pk}")
