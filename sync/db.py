"""One database API over SQLite and PostgreSQL, for the state store.

The state store writes its SQL once, in the spelling both engines share: `?`
placeholders, `INSERT … ON CONFLICT (…) DO UPDATE / DO NOTHING`, explicit
ordering columns instead of SQLite's rowid. This module holds the few things
that still differ, in one place: how to connect, how a placeholder is spelt on
the wire, how a write transaction starts, and a handful of DDL words.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any, Protocol
from urllib.parse import urlsplit

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

SQLITE_MEMORY = ":memory:"
#: The tenant a single-team state's rows belong to (and every State's unless told otherwise).
DEFAULT_TENANT = "default"
_PG_SCHEMES = ("postgresql", "postgres")
_SECRET_PARAM = re.compile(r"(?i)([?&](?:ssl)?password=)[^&#]*")


class StateError(Exception):
    """The state store cannot be used as asked: bad URL, unreachable server, too-new schema."""


class Cursor(Protocol):
    """What the state store needs of a cursor; sqlite3's and psycopg's both qualify."""

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


# ----------------------------------------------------------------------------- URLs


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***: safe for logs, errors and `leadsync` output."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return "<unparseable URL>"
    userinfo, at, hostinfo = netloc.rpartition("@")
    if at and ":" in userinfo:
        url = url.replace(netloc, f"{userinfo.split(':', 1)[0]}:***@{hostinfo}", 1)
    return _SECRET_PARAM.sub(r"\1***", url)


def scheme_of(url: str) -> str:
    """`sqlite`, `postgresql`, or whatever else the URL names (lower-cased)."""
    return url.split(":", 1)[0].lower() if ":" in url else ""


def sqlite_path(url: str) -> str | None:
    """The file a `sqlite:` URL names (`:memory:` for none), or None when it is not a SQLite URL we take."""
    if url in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
        return SQLITE_MEMORY
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    return None


def _unsupported(url: str) -> StateError:
    return StateError(
        f"unsupported state URL {mask_url(url)!r}: use sqlite:///PATH or postgresql://USER:PASSWORD@HOST[:PORT]/DB"
    )


# ----------------------------------------------------------------------------- dialects

_LITERAL_OR_MARK = re.compile(r"'(?:[^']|'')*'|\?|%")


@lru_cache(maxsize=512)
def _format_style(sql: str) -> str:
    """`?` → `%s` outside string literals, and every `%` doubled: psycopg reads `%` as its own marker."""

    def swap(m: re.Match[str]) -> str:
        token = m.group(0)
        return "%s" if token == "?" else token.replace("%", "%%")

    return _LITERAL_OR_MARK.sub(swap, sql)


@dataclass(frozen=True)
class Dialect:
    """Everything that differs between the engines, as data, so the SQL itself is written once.

    `ddl_words` fill `$name` slots in migration DDL; `byte_ordered_text` makes PostgreSQL
    compare text the way SQLite does (bytewise), so every `ORDER BY id` and every
    "lowest id wins" rule gives the same answer on both engines whatever the server's locale.
    """

    name: str
    begin: str
    migration_lock: str | None
    ddl_words: tuple[tuple[str, str], ...]
    byte_ordered_text: bool
    qmark: bool

    def query(self, sql: str) -> str:
        """The statement in this driver's placeholder style."""
        return sql if self.qmark else _format_style(sql)

    def ddl(self, sql: str) -> str:
        """Migration DDL with this engine's words filled in."""
        out = Template(sql).substitute(dict(self.ddl_words))
        return re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', out) if self.byte_ordered_text else out


SQLITE = Dialect(
    name="sqlite",
    begin="BEGIN IMMEDIATE",  # take the write lock up front: no deadlock upgrading a read lock later
    migration_lock=None,  # BEGIN IMMEDIATE already keeps a second migrator out
    ddl_words=(("autoid", "INTEGER PRIMARY KEY AUTOINCREMENT"), ("insertion_order", "rowid"),
               ("without_rowid", "WITHOUT ROWID"), ("blob", "BLOB"),
               ("occurred_ms", "CAST(round((julianday(occurred_at) - 2440587.5) * 86400000) AS INTEGER)"),
               # AUTOINCREMENT already counts on from the highest value written, explicit ones too: nothing to do
               ("identity_past_max", "m")),
    byte_ordered_text=False,  # SQLite's default BINARY collation already is
    qmark=True,
)

POSTGRESQL = Dialect(
    name="postgresql",
    begin="BEGIN",
    # Two processes opening an old database at once: the second waits, then finds the work done.
    migration_lock="LOCK TABLE meta IN EXCLUSIVE MODE",
    ddl_words=(("autoid", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"), ("insertion_order", "ctid"),
               ("without_rowid", ""), ("blob", "BYTEA"),
               ("occurred_ms", "CAST(round(EXTRACT(EPOCH FROM CAST(occurred_at AS TIMESTAMPTZ)) * 1000) AS BIGINT)"),
               # over (t table, c identity column, m its highest value): the next generated value is m + 1
               ("identity_past_max", "setval(pg_get_serial_sequence(t, c), coalesce(m, 0) + 1, false)")),
    byte_ordered_text=True,
    qmark=False,
)


def upsert_sql(table: str, columns: Sequence[str], key: Sequence[str], update: Sequence[str] | None = None) -> str:
    """`INSERT … ON CONFLICT (key) DO UPDATE SET …` (every non-key column unless `update` says which).

    What SQLite's `INSERT OR REPLACE` meant, in the spelling SQLite (3.24+) and PostgreSQL share;
    `update=()` gives `DO NOTHING`, what `INSERT OR IGNORE` meant.
    """
    cols = list(columns)
    if update is None:
        update = [c for c in cols if c not in key]
    action = "DO UPDATE SET " + ", ".join(f"{c}=excluded.{c}" for c in update) if update else "DO NOTHING"
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks(len(cols))}) ON CONFLICT ({', '.join(key)}) {action}"


def marks(n: int) -> str:
    """`?,?,…` for an IN list of n values."""
    return ",".join("?" * n)


# ----------------------------------------------------------------------------- connections


class Database:
    """A connection plus its dialect: run SQL written once, in the shared spelling, on either engine.

    Both connections run in autocommit mode; `transaction()` is the one way to group writes,
    so a statement outside it is committed at once on both engines alike.
    """

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        self._conn = conn
        self.dialect = dialect
        #: Called after a transaction rolls back: caches of rows it wrote (text numbers, dictionaries) forget them.
        self.on_rollback: list[Callable[[], None]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cur = self._conn.cursor()
        cur.execute(self.dialect.query(sql), tuple(params))
        return cur

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Cursor:
        cur = self._conn.cursor()
        rows = [tuple(r) for r in rows]
        if rows:  # psycopg would still prepare the statement for nothing
            cur.executemany(self.dialect.query(sql), rows)
        return cur

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """All of it or none of it; not re-entrant (neither engine nests a plain BEGIN)."""
        self.execute(self.dialect.begin)
        try:
            yield self
        except BaseException:
            self.execute("ROLLBACK")
            for forget in self.on_rollback:
                forget()
            raise
        self.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


def connect(url: str) -> Database:
    """Open the database a state URL names; the scheme picks the engine."""
    scheme = scheme_of(url)
    if scheme == "sqlite":
        path = sqlite_path(url)
        if path is None:
            raise _unsupported(url)
        return _connect_sqlite(path)
    if scheme in _PG_SCHEMES:
        return _connect_postgresql(url)
    raise _unsupported(url)


def _connect_sqlite(path: str) -> Database:
    if path != SQLITE_MEMORY:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_S, isolation_level=None, check_same_thread=False)
    _pragma_while_busy(conn, "journal_mode=WAL")
    for pragma in ("synchronous=NORMAL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    return Database(conn, SQLITE)


SQLITE_BUSY_S = 30


def _pragma_while_busy(conn: sqlite3.Connection, pragma: str) -> None:
    """Switching to WAL needs a moment of exclusive access, and SQLite answers "database is locked" at once
    instead of waiting out the busy timeout. Two leadsync processes opening a new state file together hit
    that; the second must get as far as the writer lock and say another run holds it, not crash."""
    for attempt in Retrying(retry=retry_if_exception(_locked), wait=wait_random_exponential(0.01, 0.5),
                            stop=stop_after_delay(SQLITE_BUSY_S), reraise=True):
        with attempt:
            conn.execute(f"PRAGMA {pragma}")


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _connect_postgresql(url: str) -> Database:
    try:
        import psycopg  # only PostgreSQL users pay for the import
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise StateError("a postgresql:// state URL needs psycopg: pip install 'psycopg[binary]'") from exc
    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        # libpq's message names host, port and user, never the password; the URL we print is masked.
        raise StateError(f"cannot open state database {mask_url(url)}: {exc}") from None
    return Database(conn, POSTGRESQL)
