"""How soon the daemon acts on queued router work: from a commit to the start of the ``pending`` run.

Runs the real daemon (scheduler and wake-up watcher) in this process against one emulated RouterOS router, on
SQLite and on PostgreSQL (when it answers on 127.0.0.1:5432, user ``postgres``, trust authentication; a scratch
database is created and dropped). The periodic check and the full reconcile are pushed a day away, so every run
measured was started by a wake-up. Each change (a suspension, then a release, and so on) is committed through an
engine of its own, as the dashboard or the CLI would, at a random moment, and waited for on the router before the
next one. A run that starts before ``commit()`` has returned to the committer counts as 0 ms.

    .venv/bin/python -m bench.wakeup [--changes 50] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

from bench.billing_run import database
from daemon.config import Settings, load_settings
from daemon.db import make_engine, session_factory, upgrade
from daemon.scheduler import jobs, runner
from daemon.scheduler.wakeup import SQLITE_POLL_SECONDS
from daemon.services.state import set_service_state
from lab.routeros import RouterOSEmulator
from tests.lab_setup import seed_subscriber

USER, PASSWORD = "edgebill", "bench-router-password"


def write_config(folder: Path, url: str, port: int) -> Settings:
    files = {
        "web.key": secrets.token_hex(32).encode(),
        "data.key": Fernet.generate_key(),
        "router.password": PASSWORD.encode(),
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
        (folder / name).chmod(0o600)
    config = folder / "edgebill.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n'
        f'[web]\nlisten = "127.0.0.1:8080"\nsecret_key_file = "{folder / "web.key"}"\n'
        f'[security]\nsecret_key_file = "{folder / "data.key"}"\n'
        '[billing]\ncurrency = "USD"\ntimezone = "UTC"\n'
        '[scheduler]\nreconcile_interval = "1d"\npoll_interval = "1d"\ndunning_interval = "1d"\n'
        f'[[routers]]\nname = "core1"\nkind = "mikrotik"\nhost = "127.0.0.1"\nport = {port}\n'
        f'username = "{USER}"\npassword_file = "{folder / "router.password"}"\ntimeout = "5s"\n'
    )
    config.chmod(0o600)
    return load_settings(config)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.001)


class RunStarts:
    """Wraps :func:`daemon.scheduler.jobs.pending_job` to note when each run starts."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._original = jobs.pending_job

    def __enter__(self) -> RunStarts:
        original = self._original

        def noted() -> None:
            self.times.append(time.perf_counter())
            original()

        jobs.pending_job = noted
        return self

    def __exit__(self, *_exc: object) -> None:
        jobs.pending_job = self._original

    def first_after(self, moment: float) -> float | None:
        return next((t for t in self.times if t >= moment), None)

    def began_after(self, moment: float) -> Callable[[], bool]:
        return lambda: self.first_after(moment) is not None

    def quiet_for(self, seconds: float) -> bool:
        return not self.times or time.perf_counter() - self.times[-1] > seconds


def bench(backend: str, changes: int) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        database(backend, Path(tmp)) as url,
        RouterOSEmulator(users={USER: PASSWORD}) as router,
        RunStarts() as starts,
    ):
        settings = write_config(Path(tmp), url, router.port)
        engine = make_engine(url)
        other = make_engine(url)  # the engine of "another process" that commits the changes
        saved_check = runner.PENDING_CHECK_SECONDS
        runner.PENDING_CHECK_SECONDS = 86_400
        daemon: runner.Daemon | None = None
        try:
            upgrade(engine)
            sessions = session_factory(engine)
            svc_id = seed_subscriber(sessions, settings, actor="bench")

            def disabled() -> str | None:
                row = next((r for r in router.items("/ppp/secret") if r.get("name") == "ada"), None)
                return None if row is None else row.get("disabled")

            def shows(suspended: bool) -> Callable[[], bool]:
                return lambda: disabled() == ("true" if suspended else "false")

            daemon = runner.Daemon(settings, sessions)
            daemon.start()
            watcher = daemon.watcher
            assert watcher is not None
            wait_until(shows(False), "the first reconcile")
            wait_until(watcher.ready.is_set, "the watcher")
            elsewhere = session_factory(other)
            latencies: list[float] = []
            jitter = random.Random(7)
            for n in range(changes):
                # Let the runs that follow the last change (on SQLite, the daemon's own commits wake it) pass,
                # then commit at a random moment: not in step with the watcher's checks.
                wait_until(lambda: starts.quiet_for(0.1) and not daemon.reconcile_lock.locked(), "a quiet moment")
                time.sleep(jitter.uniform(0, 0.05))
                suspend = n % 2 == 0
                with elsewhere() as s:
                    set_service_state(s, "bench", svc_id, "suspend" if suspend else "resume", "bench")
                    before = time.perf_counter()
                    s.commit()
                    committed = time.perf_counter()
                wait_until(starts.began_after(before), "the pending run")
                started = starts.first_after(before)
                assert started is not None
                latencies.append(max(0.0, started - committed))
                wait_until(shows(suspend), "the change on the router")
        finally:
            if daemon is not None:
                daemon.stop()
            runner.PENDING_CHECK_SECONDS = saved_check
            other.dispose()
            engine.dispose()
    ms = sorted(1000 * value for value in latencies)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
    note = f" (data_version read every {SQLITE_POLL_SECONDS * 1000:.0f} ms)" if backend == "sqlite" else ""
    print(
        f"{backend:<9} {len(ms)} changes, commit -> pending run started: median {statistics.median(ms):6.1f} ms, "
        f"p95 {p95:6.1f} ms, max {ms[-1]:6.1f} ms{note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    print(f"without wake-ups the periodic check finds a change after up to {runner.PENDING_CHECK_SECONDS} s")
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        bench(backend, max(1, args.changes))


if __name__ == "__main__":
    main()
