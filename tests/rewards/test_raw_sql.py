"""The COPY of rewards names its columns in one place (the row it writes); held to the model."""

from rewards.models import Reward, UserCounter
from rewards.services.evaluation import _COPY_REWARDS, _NewReward
from rewards.services.ledger import USER_COUNTER_COLUMNS


def test_the_reward_copy_writes_every_column_of_the_reward_table():
    columns = {field.column for field in Reward._meta.concrete_fields}

    assert set(_NewReward._fields) == columns
    assert len(_NewReward._fields) == len(columns)


def test_the_reward_copy_goes_to_the_reward_table_with_the_rows_fields_in_order():
    assert (
        f"COPY {Reward._meta.db_table} ({', '.join(_NewReward._fields)}) FROM STDIN"
    ) == _COPY_REWARDS


def test_the_ledger_writes_back_every_column_of_the_user_counters_but_the_id():
    columns = {field.column for field in UserCounter._meta.concrete_fields} - {"id"}

    assert set(USER_COUNTER_COLUMNS) == columns
