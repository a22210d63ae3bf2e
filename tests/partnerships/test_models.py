import pytest
from django.core.exceptions import ValidationError

from tests.factories import PartnershipFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("field", "value"), [("time_zone", "Mars/Olympus_Mons"), ("reward_decimal_places", 7)]
)
def test_partnership_settings_that_cannot_work_are_refused(field, value):
    partnership = PartnershipFactory()
    setattr(partnership, field, value)

    with pytest.raises(ValidationError) as refused:
        partnership.full_clean()

    assert field in refused.value.message_dict


def test_a_time_zone_and_six_places_are_accepted():
    partnership = PartnershipFactory(time_zone="Asia/Kolkata", reward_decimal_places=6)

    partnership.full_clean()

    assert partnership.zone.key == "Asia/Kolkata"
