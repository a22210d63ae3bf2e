"""Two approvers pressing Approve at once approve once: the campaign row's lock orders them."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from campaigns.lifecycle import LifecycleRefused, campaign_approve, campaign_change
from campaigns.models import Campaign
from campaigns.selectors import campaign_pending_change
from partnerships.models import AuditEntry


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_two_approvers_racing_approve_a_change_once(
    live_campaign, manager, approver, second_approver
):
    edited = Campaign.objects.get(pk=live_campaign.pk)
    edited.budget = Decimal("500")
    campaign_change(campaign=edited, author=manager)
    shown_id = campaign_pending_change(campaign=live_campaign).pk
    barrier = threading.Barrier(2)
    approved, refused, errors = [], [], []

    def approve(user) -> None:
        try:
            barrier.wait()
            approved.append(
                campaign_approve(campaign=live_campaign, approver=user, shown_id=shown_id)
            )
        except LifecycleRefused as exc:
            refused.append(exc.message)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(u,)) for u in (approver, second_approver)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(approved) == 1
    assert refused == ["Nothing awaits approval on this campaign (it is active)."]
    live_campaign.refresh_from_db()
    assert (live_campaign.version, live_campaign.budget) == (2, Decimal("500"))
    assert live_campaign.versions.filter(state="approved", version=2).count() == 1
    assert AuditEntry.objects.filter(action="campaign.approve").count() == 1
