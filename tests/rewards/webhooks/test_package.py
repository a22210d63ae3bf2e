"""The webhooks package keeps the names that live outside the code: tables, the task."""

from config.celery import app
from rewards.webhooks.models import WebhookDelivery, WebhookEndpoint


def test_the_models_stay_in_the_rewards_app_and_tables():
    assert [model._meta.db_table for model in (WebhookEndpoint, WebhookDelivery)] == [
        "rewards_webhookendpoint",
        "rewards_webhookdelivery",
    ]
    assert {model._meta.app_label for model in (WebhookEndpoint, WebhookDelivery)} == {"rewards"}


def test_the_sender_task_keeps_the_name_queued_messages_and_beat_use():
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery

    task = app.tasks["rewards.tasks.send_due_webhooks"]

    assert task.name == "rewards.tasks.send_due_webhooks"
    assert app.conf.task_routes["rewards.tasks.send_due_webhooks"] == {"queue": "webhooks"}
