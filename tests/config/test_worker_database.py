"""Workers keep their database connections across tasks; after the server restarts, every worker
process and thread must get a working one again (real servers of our own, real workers)."""

import time

import pytest
from redis import Redis

from tests.servers import send_task
from tests.support import celery_worker, process_env, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]
QUEUES = ("celery", "webhooks")  # evaluation (prefork) and the webhook sender (threads)


def test_every_worker_process_and_thread_runs_tasks_again_after_a_database_restart(
    private_postgres, private_redis, tmp_path
):
    with private_postgres.connect() as db:
        db.execute("DROP TABLE IF EXISTS test_worker_run")
        db.execute("CREATE TABLE test_worker_run (worker text NOT NULL)")
    Redis.from_url(private_redis).flushdb()
    env = process_env(DATABASE_URL=private_postgres.url, CELERY_BROKER_URL=private_redis)

    def send_round() -> None:
        for queue in QUEUES:
            for _ in range(8):
                send_task(private_redis, "tests.record_worker", queue=queue)

    def workers_seen() -> set[str]:
        with private_postgres.connect() as db:
            return {row[0] for row in db.execute("SELECT DISTINCT worker FROM test_worker_run")}

    def all_seen(expected: int):
        def check() -> bool:
            if len(workers_seen()) >= expected:
                return True
            send_round()
            time.sleep(0.5)
            return False

        return check

    with (
        celery_worker(
            env,
            tmp_path / "prefork.log",
            concurrency=2,
            queues="celery",
            include="tests.worker_tasks",
        ),
        celery_worker(
            env,
            tmp_path / "threads.log",
            concurrency=2,
            queues="webhooks",
            pool="threads",
            include="tests.worker_tasks",
        ),
    ):
        wait_until(all_seen(4), 60, "two processes and two threads with a connection (see logs)")
        before = workers_seen()
        time.sleep(1)  # every task done: the connections sit idle

        private_postgres.restart()
        with private_postgres.connect() as db:
            db.execute("TRUNCATE test_worker_run")
        wait_until(
            lambda: all_seen(4)() and workers_seen() == before,
            30,
            f"each of {sorted(before)} running tasks again (see prefork.log, threads.log)",
        )
