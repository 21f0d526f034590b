"""The decision log: every decision made, kept append-only in a real database.

A payer must be able to show, for any prior-authorization number, the
request, the decision, the rules that made it and when, and to decide past
requests again when the policy changes. Each record holds:

- ``id``: the record's id, issued here (a random UUID); it is also the
  ``coverage-assertion-id`` of a Da Vinci CRD answer;
- ``recorded_at`` (UTC), ``source`` (the route or command that decided),
  ``request_id`` (a CDS Hooks ``hookInstance``, a batch line), ``subject``
  (the FHIR patient), ``parent`` (the record a questionnaire started from);
- the input: the case as decided (case format) and, for FHIR input, the
  SHA-256 of the bytes received;
- the decision (decision format), and its provenance: policy, version, the
  SHA-256 of the version's and the framework's rule files (and, once per
  rule set, each file's own SHA-256), the package version;
- ``pa_number``: a prior-authorization number, issued here when the
  decision approves and one is asked for; unique, random, never derived from
  the case (two patients with the same facts get two numbers).

A clinical reviewer's **notes** are kept beside the records (table
``review_notes``, schema version 3): each names the record it is about
(``decision_id``), holds the change set the reviewer tried on the logged
request (what-if changes), who saved it (as the reviewer gave it) and when,
an optional comment, and the decision the changed request got under the
rules of the day. A note never alters its record: it is a row of its own.

Records and notes are never changed or deleted: the database refuses UPDATE
and DELETE on them (triggers), and the program only ever inserts. SQLite by
default (a file; zero set-up; WAL, every insert its own transaction), or
PostgreSQL by URL (``postgresql://...``, through psycopg 3). The program
creates the schema and migrates an older one (``kineret_log_schema`` holds
its version); a database written by a newer program is refused.

Connections are made per process and thread, after a fork: a server's
worker processes each write their own records.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

from .errors import KineretError

if TYPE_CHECKING:  # pragma: no cover
    from .knowledge.base import KnowledgeBase

SCHEMA_VERSION = 3
ENV_DB = "KINERET_ASP_DB"
DEFAULT_FILE = "decisions.sqlite3"
_PA_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U to misread
PA_RANDOM = 12  # random characters of a prior-authorization number (60 bits)
_COLUMNS = (
    "seq",
    "id",
    "recorded_at",
    "source",
    "request_id",
    "subject",
    "input_case",
    "input_sha256",
    "decision",
    "outcome",
    "policy",
    "version",
    "rules_sha256",
    "framework_sha256",
    "package_version",
    "pa_number",
    "report",
    "parent",
)
_NOTE_COLUMNS = ("seq", "id", "decision_id", "recorded_at", "reviewer", "comment", "changes", "outcome", "decision")


class LogError(KineretError):
    """The decision log cannot be opened or written: one line saying why (``code``: the exit code)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def default_location() -> Path:
    """Where ``serve`` keeps its log without ``--db``: $KINERET_ASP_DB, else the user's state folder
    ($XDG_STATE_HOME or ~/.local/state, then kineret-asp/decisions.sqlite3)."""
    if os.environ.get(ENV_DB):
        return Path(os.environ[ENV_DB])
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "kineret-asp" / DEFAULT_FILE


def redact(url: str) -> str:
    """A database URL without its password (for messages)."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


@dataclass(frozen=True)
class Entry:
    """What a caller records: the input, the decision and where it came from."""

    source: str
    case: dict
    decision: dict
    request_id: Optional[str] = None
    subject: Optional[str] = None
    input_sha256: Optional[str] = None
    report: Optional[str] = None
    parent: Optional[str] = None


@dataclass(frozen=True)
class Record:
    """One record of the log, as read back."""

    seq: int
    id: str
    recorded_at: str
    source: str
    request_id: Optional[str]
    subject: Optional[str]
    case: dict
    input_sha256: Optional[str]
    decision: dict
    outcome: str
    policy: str
    version: str
    rules_sha256: str
    framework_sha256: str
    package_version: str
    pa_number: Optional[str]
    report: Optional[str] = None
    parent: Optional[str] = None
    rule_files: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "id": self.id,
            "seq": self.seq,
            "recorded_at": self.recorded_at,
            "source": self.source,
            "request_id": self.request_id,
            "subject": self.subject,
            "coverage_assertion_id": self.id,
            "prior_authorization_number": self.pa_number,
            "parent": self.parent,
            "input": {"case": self.case, "sha256": self.input_sha256},
            "decision": self.decision,
            "provenance": {"policy": self.policy, "version": self.version, "rules_sha256": self.rules_sha256, "framework_sha256": self.framework_sha256, "package_version": self.package_version},
        }
        if self.rule_files:
            out["provenance"]["rule_files"] = self.rule_files
        return out


@dataclass(frozen=True)
class Note:
    """A reviewer's note on a logged record: the changes tried on its request, and the decision they led to."""

    seq: int
    id: str
    decision_id: str
    recorded_at: str
    reviewer: Optional[str]
    comment: Optional[str]
    changes: list
    outcome: str
    decision: dict

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "seq": self.seq,
            "decision_id": self.decision_id,
            "recorded_at": self.recorded_at,
            "reviewer": self.reviewer,
            "comment": self.comment,
            "changes": self.changes,
            "outcome": self.outcome,
            "decision": self.decision,
        }


def rule_files(kb: "KnowledgeBase") -> dict[str, str]:
    """Each rule file of a version's program (framework and version) with its own SHA-256, by its path in the KB tree."""
    from .knowledge.layout import display_path

    out = {}
    for file in kb.files:
        shown = display_path(file)
        data = kb.raw.get(shown)
        data = data if data is not None else kb.texts.get(shown, "").encode()
        out[os.path.relpath(file, kb.root).replace(os.sep, "/")] = hashlib.sha256(data).hexdigest()
    return dict(sorted(out.items()))


def pa_number(policy: str, today: datetime.date) -> str:
    """A new prior-authorization number: the policy, the day, random characters (under X12's 50)."""
    token = "".join(secrets.choice(_PA_ALPHABET) for _ in range(PA_RANDOM))
    return f"{policy}-{today:%Y%m%d}-{token}"[:50]


def public_decision(decision: dict) -> dict:
    """A decision as kept and served: the KB's absolute folder on this machine left out of its provenance."""
    provenance = decision.get("provenance")
    if isinstance(provenance, dict) and "kb" in provenance:
        decision = {**decision, "provenance": {k: v for k, v in provenance.items() if k != "kb"}}
    return decision


# --- the two databases ----------------------------------------------------------------------------------

_MIGRATIONS = {
    1: [
        "CREATE TABLE decisions (seq {serial}, id TEXT NOT NULL UNIQUE, recorded_at TEXT NOT NULL, source TEXT NOT NULL, request_id TEXT, subject TEXT,"
        " input_case TEXT NOT NULL, input_sha256 TEXT, decision TEXT NOT NULL, outcome TEXT NOT NULL, policy TEXT NOT NULL, version TEXT NOT NULL,"
        " rules_sha256 TEXT NOT NULL, framework_sha256 TEXT NOT NULL, package_version TEXT NOT NULL, pa_number TEXT UNIQUE, report TEXT)",
        "CREATE INDEX decisions_recorded_at ON decisions (recorded_at)",
        "{append_only}",
    ],
    2: [  # the questionnaire's records name the record they started from; each rule set's files, once
        "ALTER TABLE decisions ADD COLUMN parent TEXT",
        "CREATE INDEX decisions_parent ON decisions (parent)",
        "CREATE TABLE rule_sets (rules_sha256 TEXT NOT NULL, framework_sha256 TEXT NOT NULL, files TEXT NOT NULL, PRIMARY KEY (rules_sha256, framework_sha256))",
    ],
    3: [  # reviewers' notes beside the records: a table of their own, append-only too (a record is never touched)
        "CREATE TABLE review_notes (seq {serial}, id TEXT NOT NULL UNIQUE, decision_id TEXT NOT NULL REFERENCES decisions (id), recorded_at TEXT NOT NULL,"
        " reviewer TEXT, comment TEXT, changes TEXT NOT NULL, outcome TEXT NOT NULL, decision TEXT NOT NULL)",
        "CREATE INDEX review_notes_decision ON review_notes (decision_id, seq)",
        "{append_only:review_notes}",
    ],
}


class _Backend:
    """What differs between SQLite and PostgreSQL: connecting, placeholders, DDL, errors."""

    serial = ""
    append_only: list[str] = []

    def connect(self) -> Any:
        raise NotImplementedError

    def sql(self, text: str) -> str:
        return text

    def is_unique_violation(self, exc: Exception) -> bool:
        raise NotImplementedError

    def begin(self, conn: Any) -> None:
        raise NotImplementedError

    def commit(self, conn: Any) -> None:
        conn.commit()

    def rollback(self, conn: Any) -> None:
        conn.rollback()

    def end_read(self, conn: Any) -> None:
        conn.rollback()  # a read opened a transaction (PostgreSQL): end it

    def lock_schema(self, conn: Any) -> None:
        pass

    def protect(self, table: str) -> list[str]:
        """The triggers that refuse UPDATE and DELETE on another table (the first migration's protect ``decisions``)."""
        raise NotImplementedError

    def errors(self) -> tuple:
        raise NotImplementedError


class _Sqlite(_Backend):
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
    append_only = [
        "CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END",
        "CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END",
    ]

    def __init__(self, path: Path):
        self.path = path

    def connect(self) -> Any:
        import sqlite3

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")  # a committed record survives the process and the machine
        except (OSError, sqlite3.Error) as exc:
            raise LogError(f"--db {self.path}: cannot open the decision log: {exc}") from None
        return conn

    def is_unique_violation(self, exc: Exception) -> bool:
        import sqlite3

        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def commit(self, conn: Any) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def end_read(self, conn: Any) -> None:
        pass  # autocommit: a read holds nothing

    def protect(self, table: str) -> list[str]:
        return [
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END",
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END",
        ]

    def errors(self) -> tuple:
        import sqlite3

        return (sqlite3.Error,)


class _Postgres(_Backend):
    serial = "BIGSERIAL PRIMARY KEY"
    append_only = [
        "CREATE FUNCTION kineret_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the decision log is append-only'; END $$",
        "CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions FOR EACH ROW EXECUTE FUNCTION kineret_log_append_only()",
    ]

    def __init__(self, url: str):
        self.url = url
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise LogError(f"--db {redact(url)}: PostgreSQL needs psycopg: pip install 'kineret-asp[postgresql]'", 2) from None

    def connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, connect_timeout=10)
        except psycopg.Error as exc:
            first = " ".join(str(exc).split())[:300]
            raise LogError(f"--db {redact(self.url)}: cannot connect to the decision log: {first}") from None

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def is_unique_violation(self, exc: Exception) -> bool:
        import psycopg

        return isinstance(exc, psycopg.errors.UniqueViolation)

    def begin(self, conn: Any) -> None:
        pass  # psycopg opens a transaction with the first statement

    def lock_schema(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(7412630243)")  # one migration at a time among many processes

    def protect(self, table: str) -> list[str]:
        return [f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION kineret_log_append_only()"]

    def errors(self) -> tuple:
        import psycopg

        return (psycopg.Error,)


def backend_for(url: str) -> _Backend:
    """The database a ``--db`` value names: ``postgresql://...``, ``sqlite:///path``, or a file path."""
    if re.match(r"(?i)postgres(ql)?://", url):
        return _Postgres(url)
    if url.lower().startswith("sqlite:"):
        path = re.sub(r"(?i)^sqlite:(//)?", "", url)
        if not path or path in (":memory:", "/:memory:"):
            raise LogError(f"--db {url}: expected sqlite:///path/to/file (a file every worker process can open), postgresql://..., or a file path", 2)
        return _Sqlite(Path(path))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
        raise LogError(f"--db {redact(url)}: expected postgresql://..., sqlite:///path, or a file path", 2)
    return _Sqlite(Path(url))


class DecisionLog:
    """An open decision log (SQLite or PostgreSQL): append records, read them back."""

    def __init__(self, url: Optional[str] = None):
        self.url = url or str(default_location())
        self.backend = backend_for(self.url)
        self._local = threading.local()
        self._rule_sets: set[tuple[str, str]] = set()
        self.migrate()
        self.close()  # no connection is carried into a process forked from this one (each opens its own on first use)

    def __repr__(self) -> str:
        return f"DecisionLog({redact(self.url)!r})"

    # connections: one per process and thread (never shared across a fork)
    def _conn(self) -> Any:
        local = self._local
        if getattr(local, "pid", None) != os.getpid() or getattr(local, "conn", None) is None:
            local.conn = self.backend.connect()
            local.pid = os.getpid()
        return local.conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing what may already be gone
                pass
        self._local.conn = None

    def __getstate__(self) -> dict:  # a log handed to another process opens its own connections there
        return {"url": self.url}

    def __setstate__(self, state: dict) -> None:
        self.url = state["url"]
        self.backend = backend_for(self.url)
        self._local = threading.local()
        self._rule_sets = set()

    def _transaction(self, work: Any) -> Any:
        conn = self._conn()
        b = self.backend
        try:
            b.begin(conn)
            result = work(conn)
            b.commit(conn)
            return result
        except BaseException:
            try:
                b.rollback(conn)
            except Exception:  # noqa: BLE001 - the connection may be gone; the error below says why
                self._local.conn = None
            raise

    # the schema
    def schema_version(self) -> int:
        conn = self._conn()
        b = self.backend
        try:
            row = conn.execute("SELECT MAX(version) FROM kineret_log_schema").fetchone()
            version = row[0] or 0
        except b.errors():
            version = 0
        b.end_read(conn)
        return version

    def migrate(self, upto: int = SCHEMA_VERSION) -> None:
        """Create the schema, or bring an older one up to ``upto``; refuse one newer than this program's."""
        b = self.backend

        def work(conn: Any) -> None:
            b.lock_schema(conn)
            conn.execute("CREATE TABLE IF NOT EXISTS kineret_log_schema (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
            current = conn.execute("SELECT MAX(version) FROM kineret_log_schema").fetchone()[0] or 0
            if current > SCHEMA_VERSION:
                raise LogError(f"--db {redact(self.url)}: the decision log's schema is version {current}, newer than this program's {SCHEMA_VERSION}: upgrade kineret-asp", 2)
            for version in range(current + 1, upto + 1):
                for statement in _MIGRATIONS[version]:
                    texts = b.append_only if statement == "{append_only}" else b.protect(statement[13:-1]) if statement.startswith("{append_only:") else [statement]
                    for text in texts:
                        conn.execute(text.replace("{serial}", b.serial))
                conn.execute(b.sql("INSERT INTO kineret_log_schema (version, applied_at) VALUES (?, ?)"), (version, _now()))

        try:
            self._transaction(work)
        except b.errors() as exc:
            raise LogError(f"--db {redact(self.url)}: cannot create or migrate the decision log: {' '.join(str(exc).split())[:300]}") from None

    # writing
    def record(self, entry: Entry, kb: Optional["KnowledgeBase"] = None, issue_pa: bool = False) -> Record:
        """Append one record (in its own transaction) and return it with the ids issued for it.

        ``issue_pa``: also issue a prior-authorization number (retried on the
        rare clash with an earlier one: the column is unique).
        """
        decision = public_decision(entry.decision)
        provenance = decision.get("provenance") or {}
        policy = str(provenance.get("policy") or decision.get("policy") or "")
        rules, framework = str(provenance.get("rules_sha256") or ""), str(provenance.get("framework_sha256") or "")
        files = rule_files(kb) if kb is not None and (rules, framework) not in self._rule_sets and (rules, framework) == (kb.rules_sha256, kb.framework_sha256) else {}
        b = self.backend
        for _ in range(8):
            rid = str(uuid.uuid4())
            now = _now()
            number = pa_number(policy, datetime.datetime.now(datetime.timezone.utc).date()) if issue_pa else None
            row = (
                rid,
                now,
                entry.source,
                entry.request_id,
                entry.subject,
                _json(entry.case),
                entry.input_sha256,
                _json(decision),
                str(decision.get("decision", "")),
                policy,
                str(provenance.get("version") or ""),
                rules,
                framework,
                str(provenance.get("package_version") or ""),
                number,
                entry.report,
                entry.parent,
            )

            def work(conn: Any) -> int:
                if files and (rules, framework) not in self._rule_sets:
                    conn.execute(b.sql("INSERT INTO rule_sets (rules_sha256, framework_sha256, files) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"), (rules, framework, _json(files)))
                cur = conn.execute(b.sql(f"INSERT INTO decisions ({', '.join(_COLUMNS[1:])}) VALUES ({', '.join('?' for _ in _COLUMNS[1:])}) RETURNING seq"), row)  # noqa: B023 (called at once, in this iteration)
                return int(cur.fetchone()[0])

            try:
                seq = self._transaction(work)
            except b.errors() as exc:
                if b.is_unique_violation(exc):
                    continue  # an id or number drawn twice: draw again
                raise LogError(f"--db {redact(self.url)}: cannot write to the decision log: {' '.join(str(exc).split())[:300]}") from None
            if files:
                self._rule_sets.add((rules, framework))
            return Record(
                seq,
                rid,
                now,
                entry.source,
                entry.request_id,
                entry.subject,
                entry.case,
                entry.input_sha256,
                decision,
                str(decision.get("decision", "")),
                policy,
                row[10],
                rules,
                framework,
                row[13],
                number,
                entry.report,
                entry.parent,
            )
        raise LogError(f"--db {redact(self.url)}: no unique id could be drawn")  # pragma: no cover - 2^-60 eight times

    def record_many(self, entries: list[Entry], kb: Any = None) -> list[Record]:
        """Append several records in one transaction (a batch chunk): all of them, or none.

        ``kb``: the KnowledgeBase (or a list of them: one per version that
        decided some entry) whose rule files are kept with the records' rule set.
        """
        b = self.backend
        kbs = [] if kb is None else list(kb) if isinstance(kb, (list, tuple)) else [kb]
        rows = []
        for entry in entries:
            decision = public_decision(entry.decision)
            provenance = decision.get("provenance") or {}
            rows.append(
                (
                    str(uuid.uuid4()),
                    _now(),
                    entry.source,
                    entry.request_id,
                    entry.subject,
                    _json(entry.case),
                    entry.input_sha256,
                    _json(decision),
                    str(decision.get("decision", "")),
                    str(provenance.get("policy") or decision.get("policy") or ""),
                    str(provenance.get("version") or ""),
                    str(provenance.get("rules_sha256") or ""),
                    str(provenance.get("framework_sha256") or ""),
                    str(provenance.get("package_version") or ""),
                    None,
                    entry.report,
                    entry.parent,
                )
            )
        used = {(r[11], r[12]) for r in rows}
        files = {(k.rules_sha256, k.framework_sha256): k for k in kbs if (k.rules_sha256, k.framework_sha256) in used - self._rule_sets}
        files = {key: rule_files(k) for key, k in files.items()}  # the files of each rule set not yet kept

        def work(conn: Any) -> list[int]:
            for key, hashes in files.items():
                conn.execute(b.sql("INSERT INTO rule_sets (rules_sha256, framework_sha256, files) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"), (*key, _json(hashes)))
            sql = b.sql(f"INSERT INTO decisions ({', '.join(_COLUMNS[1:])}) VALUES ({', '.join('?' for _ in _COLUMNS[1:])}) RETURNING seq")
            return [int(conn.execute(sql, row).fetchone()[0]) for row in rows]

        try:
            seqs = self._transaction(work)
        except b.errors() as exc:
            raise LogError(f"--db {redact(self.url)}: cannot write to the decision log: {' '.join(str(exc).split())[:300]}") from None
        self._rule_sets.update(files)
        out = []
        for seq, row, entry in zip(seqs, rows, entries):
            out.append(
                Record(
                    seq,
                    row[0],
                    row[1],
                    entry.source,
                    entry.request_id,
                    entry.subject,
                    entry.case,
                    entry.input_sha256,
                    json.loads(row[7]),
                    row[8],
                    row[9],
                    row[10],
                    row[11],
                    row[12],
                    row[13],
                    None,
                    entry.report,
                    entry.parent,
                )
            )
        return out

    # reading
    def _rows(self, where: str = "", params: tuple = (), tail: str = "") -> Iterator[Record]:
        conn = self._conn()
        b = self.backend
        try:
            cur = conn.execute(b.sql(f"SELECT {', '.join(_COLUMNS)} FROM decisions {where} {tail}"), params)
            rows = cur.fetchall()
        except b.errors() as exc:
            raise LogError(f"--db {redact(self.url)}: cannot read the decision log: {' '.join(str(exc).split())[:300]}") from None
        finally:
            b.end_read(conn)
        for r in rows:
            yield Record(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], json.loads(r[8]), r[9], r[10], r[11], r[12], r[13], r[14], r[15], r[16], r[17])

    def get(self, key: str) -> Optional[Record]:
        """The record with this id (coverage-assertion id) or prior-authorization number, with its rule files."""
        found = next(self._rows("WHERE id = ? OR pa_number = ?", (key, key), "ORDER BY seq LIMIT 1"), None)
        if found is None:
            return None
        conn = self._conn()
        b = self.backend
        try:
            row = conn.execute(b.sql("SELECT files FROM rule_sets WHERE rules_sha256 = ? AND framework_sha256 = ?"), (found.rules_sha256, found.framework_sha256)).fetchone()
        finally:
            b.end_read(conn)
        return Record(**{**found.__dict__, "rule_files": json.loads(row[0]) if row else {}})

    def find(self, source: Optional[str] = None, after: int = 0, limit: Optional[int] = None, parent: Optional[str] = None) -> list[Record]:
        """Records in the order they were written, after sequence number ``after``."""
        where, params = ["seq > ?"], [after]
        if source:
            where.append("source = ?")
            params.append(source)
        if parent:
            where.append("parent = ?")
            params.append(parent)
        tail = "ORDER BY seq" + (f" LIMIT {int(limit)}" if limit else "")
        return list(self._rows("WHERE " + " AND ".join(where), tuple(params), tail))

    def each(self, source: Optional[str] = None, page: int = 1000) -> Iterator[Record]:
        """Every record in order, read a page at a time."""
        after = 0
        while True:
            rows = self.find(source, after, page)
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1].seq

    def count(self) -> int:
        conn = self._conn()
        try:
            return int(conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])
        finally:
            self.backend.end_read(conn)

    # reviewers' notes: beside a record, never in it
    def add_note(self, decision_id: str, changes: list, decision: dict, reviewer: Optional[str] = None, comment: Optional[str] = None) -> Optional[Note]:
        """Append a reviewer's note to the record ``decision_id`` (its id, not its number): the changes tried on its
        request and the ``decision`` they led to. None when no record has that id. The record itself is not touched."""
        b = self.backend
        kept = public_decision(decision)
        columns = _NOTE_COLUMNS[1:]
        sql = b.sql(f"INSERT INTO review_notes ({', '.join(columns)}) SELECT {', '.join('?' for _ in columns)} WHERE EXISTS (SELECT 1 FROM decisions WHERE id = ?) RETURNING seq")
        for _ in range(8):
            nid = str(uuid.uuid4())
            now = _now()
            row = (nid, decision_id, now, reviewer, comment, _json(changes), str(kept.get("decision", "")), _json(kept))

            def work(conn: Any) -> Optional[int]:  # the record's existence checked in the same transaction as the insert
                found = conn.execute(sql, (*row, decision_id)).fetchone()  # noqa: B023 (called at once, in this iteration)
                return None if found is None else int(found[0])

            try:
                seq = self._transaction(work)
            except b.errors() as exc:
                if b.is_unique_violation(exc):
                    continue  # an id drawn twice: draw again
                raise LogError(f"--db {redact(self.url)}: cannot write to the decision log: {' '.join(str(exc).split())[:300]}") from None
            if seq is None:
                return None
            return Note(seq, nid, decision_id, now, reviewer, comment, json.loads(row[5]), row[6], kept)
        raise LogError(f"--db {redact(self.url)}: no unique id could be drawn")  # pragma: no cover - 2^-122 eight times

    def notes(self, decision_id: str, note_id: Optional[str] = None) -> list[Note]:
        """The notes on the record ``decision_id`` (its id) in the order they were saved; only ``note_id`` when given."""
        conn = self._conn()
        b = self.backend
        where, params = "decision_id = ?", [decision_id]
        if note_id is not None:
            where += " AND id = ?"
            params.append(note_id)
        try:
            rows = conn.execute(b.sql(f"SELECT {', '.join(_NOTE_COLUMNS)} FROM review_notes WHERE {where} ORDER BY seq"), tuple(params)).fetchall()
        except b.errors() as exc:
            raise LogError(f"--db {redact(self.url)}: cannot read the decision log: {' '.join(str(exc).split())[:300]}") from None
        finally:
            b.end_read(conn)
        return [Note(int(r[0]), r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], json.loads(r[8])) for r in rows]

    def note(self, decision_id: str, note_id: str) -> Optional[Note]:
        """One note on the record ``decision_id``, or None."""
        found = self.notes(decision_id, note_id)
        return found[0] if found else None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


def _json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_OPEN: dict[str, DecisionLog] = {}


def open_log(url: Optional[str]) -> DecisionLog:
    """The log at ``url`` (one object per URL in a process)."""
    key = url or str(default_location())
    log = _OPEN.get(key)
    if log is None:
        log = _OPEN[key] = DecisionLog(key)
    return log
