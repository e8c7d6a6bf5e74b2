"""A throwaway PostgreSQL server for the history tests (a pytest plugin module, loaded by
conftest.py).

``postgres_url`` is env ``LLM_EVAL_TEST_POSTGRES_URL`` when set (a server CI or a
developer provides). Otherwise it starts a cluster of its own: ``initdb`` into a fresh
temporary folder, ``pg_ctl start`` on a free loopback port, trust authentication, no
Unix socket, and ``pg_ctl stop`` at the end of the session. initdb refuses to run as
root, so under root (CI runs as root) the server runs as the ``postgres`` user that the
Debian package creates (else ``nobody``) and the folder is handed to that user. Tests
skip, saying why, only when no PostgreSQL binaries are installed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ENV = "LLM_EVAL_TEST_POSTGRES_URL"


def _bindir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> str | None:
    """The user to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.skip("running as root and neither a 'postgres' nor a 'nobody' user exists: initdb refuses root")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A SQLAlchemy URL of an empty-enough PostgreSQL database (tests use unique names)."""
    provided = os.environ.get(ENV)
    if provided:
        yield provided
        return
    bindir = _bindir()
    if bindir is None:
        pytest.skip(f"PostgreSQL binaries not installed (no pg_ctl on PATH or under /usr/lib/postgresql/*/bin) "
                    f"and {ENV} is not set: `apt-get install postgresql` or point {ENV} at a server")
    user = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="llm-eval-pg-"))
    data = folder / "data"
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    run = dict(user=user, capture_output=True, text=True, cwd=folder, timeout=120)
    done = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                           "--no-sync"], **run)
    if done.returncode != 0:
        pytest.fail(f"initdb failed:\n{done.stdout}\n{done.stderr}")
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' -c fsync=off"
    done = subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "server.log"),
                           "-w", "-t", "60", "start"], **run)
    if done.returncode != 0:
        log = (folder / "server.log").read_text(errors="replace") if (folder / "server.log").exists() else ""
        pytest.fail(f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n{log}")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], **run)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_url: str) -> str:
    """A fresh database on the server for one test (dropped afterwards)."""
    import uuid

    import sqlalchemy as sa

    name = "llm_eval_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
        url = sa.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        yield url
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()
