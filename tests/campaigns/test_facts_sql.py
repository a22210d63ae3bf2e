"""The facts query names TriggerEvent's columns in one place; held to the model."""

from campaigns import facts
from triggers.models import TriggerEvent


def test_the_facts_query_reads_columns_the_trigger_event_model_has():
    for field_name, column in facts.EVENT_COLUMNS.items():
        assert TriggerEvent._meta.get_field(field_name).column == column
    assert TriggerEvent._meta.db_table == facts.EVENT_TABLE


def test_the_statuses_the_facts_do_not_count_are_the_models():
    statuses = set(TriggerEvent.Status.values)

    assert {status.value for status in facts.NOT_COUNTED} <= statuses
    assert "'cancelled', 'failed'" in facts._FACT_SQL
