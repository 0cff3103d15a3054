"""Databases for the journal tests: SQLite files, and fresh PostgreSQL databases on the test
server ``.ci/postgres`` starts (``PMRS_TEST_POSTGRES_URL``).

Without that variable the PostgreSQL tests are skipped, unless ``CI=true``: then they fail, so
CI can never pass with the PostgreSQL half unrun.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import pytest

POSTGRES_ENV = "PMRS_TEST_POSTGRES_URL"
_counter = itertools.count()


def postgres_base() -> str:
    """The test server's URL; skips (locally) or fails (CI=true) when there is none."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: the PostgreSQL tests cannot run")
        pytest.skip(f"{POSTGRES_ENV} is not set (bash .ci/postgres start sets it)")
    return base


def postgres_ca() -> str:
    """The PEM file of the authority that signed the test server's TLS certificate (for the
    name localhost); skips or fails like postgres_base()."""
    postgres_base()
    ca = os.environ.get("PMRS_TEST_POSTGRES_CA")
    if not ca:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but PMRS_TEST_POSTGRES_CA is not set: the TLS test cannot run")
        pytest.skip("PMRS_TEST_POSTGRES_CA is not set (bash .ci/postgres start sets it)")
    return ca


def client_certificate_role() -> tuple[str, Path]:
    """The test server's ``pmrs_cert`` role, which logs in only with the client certificate
    beside the authority's (``client.crt``, ``client.key``) over TLS: its URL with no options,
    by the name ``localhost``, to its own database, and that directory."""
    ca = Path(postgres_ca())
    server, _ = postgres_base().rsplit("/", 1)
    url = server.replace("postgres@127.0.0.1", "pmrs_cert@localhost", 1) + "/pmrs_cert"
    assert "pmrs_cert@localhost" in url, url
    return url, ca.parent


def fresh_postgres(tag: str) -> str:
    """A new, empty database on the test server; its URL."""
    base = postgres_base()
    name = f"pmrs_{tag}_{os.getpid()}_{next(_counter)}"
    subprocess.run(
        ["psql", base, "-qX", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {name}"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return base.rsplit("/", 1)[0] + "/" + name


def psql(url: str, sql: str) -> str:
    """Runs ``sql`` on ``url``; returns psql's unaligned output."""
    done = subprocess.run(
        ["psql", url, "-qXAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip()


def journal_url(kind: str, tmp_path: Path, tag: str) -> str:
    """A fresh journal location of ``kind`` ('sqlite' or 'postgres')."""
    if kind == "sqlite":
        return str(tmp_path / f"{tag}.db")
    return fresh_postgres(tag)
