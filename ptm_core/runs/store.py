"""The run store: every job with its config, status, metrics, timings and artifacts, in SQLite (WAL).

Arrays live beside it as checksummed npz files (see artifacts.py); the store records their paths.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from ptm_core.base.paths import data_dir
from ptm_core.base.text import csv_cell

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    artifacts TEXT NOT NULL DEFAULT '{}',
    log TEXT NOT NULL DEFAULT '[]',
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS runs_key ON runs (key, created);
"""
JSON_COLUMNS = ("config", "metrics", "artifacts", "log")
COLUMNS = ("id", "key", "kind", "title", "config", "status", "progress", "message", "error", "metrics", "artifacts",
           "log", "created", "started", "finished")


LOCK_WAIT_S = 2.0  # longest any store call waits for another process's lock; a job never stalls 30 s a write


def default_store_path() -> Path:
    return data_dir() / "runs.sqlite"


class _Unusable(Exception):
    """The file at the store path is not a run store we can use (corrupt, foreign, a folder)."""


def _is_locked(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def _is_read_only(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorname", "") or "").startswith("SQLITE_READONLY") or "readonly" in str(exc)


class _Unwritable(Exception):
    """A store this process cannot write (read-only file or folder, no permission): sound, so never moved aside."""


def _write_problem(path: Path) -> str | None:
    """Why this process cannot write the store, judged before SQLite tries (which would say 'unable to open')."""
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(path.parent, os.W_OK):  # SQLite must create its -wal and -shm files beside the store
        return "its folder is read-only"
    return None


def _connect(path: Path) -> sqlite3.Connection:
    """An open, checked store; _Unusable for a broken one, _Unwritable for one this process cannot write,
    OperationalError('locked') for a held one."""
    if path.exists() and not path.is_file():
        raise _Unusable("a folder or special file is in its place")
    if str(path) != ":memory:" and (problem := _write_problem(path)) is not None:
        raise _Unwritable(problem)
    try:
        db = sqlite3.connect(path, check_same_thread=False, timeout=LOCK_WAIT_S, isolation_level=None)
    except sqlite3.Error as exc:  # a permission, a vanished folder: never "locked", which it is not
        raise _Unwritable(f"it cannot be opened ({exc})") from None
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise _Unusable("it failed SQLite's integrity check")
        _check_schema(db)
        db.executescript(SCHEMA)
        return db
    except sqlite3.Error as exc:
        db.close()
        if _is_locked(exc):
            raise
        if _is_read_only(exc):
            raise _Unwritable(f"it cannot be written ({exc})") from None
        raise _Unusable(f"it is not a readable SQLite database ({exc})") from None
    except _Unusable:
        db.close()
        raise


def _check_schema(db: sqlite3.Connection) -> None:
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return  # a new, empty file
    if "runs" not in tables:
        raise _Unusable(f"it holds another program's tables ({', '.join(sorted(tables)[:3])})")
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    if not set(COLUMNS) <= columns:
        raise _Unusable("its runs table has a different layout")


def _move_aside(path: Path) -> Path:
    """Rename a broken store (and its WAL files) out of the way; it is kept for inspection, never deleted."""
    aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 0
    while aside.exists():
        n += 1
        aside = aside.with_name(f"{aside.name.split('~')[0]}~{n}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(aside.with_name(aside.name + suffix))
    return aside


class RunStore:
    """Runs in SQLite. A broken store file is moved aside and a fresh one started; one locked by another
    process is replaced by an in-memory store for this session. Either way `recovered_note` says so."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._pending: dict[str, dict] = {}  # saves that met a lock, written on the next successful save
        self.recovered_note: str | None = None  # for the UI: what happened to the store at start, if anything
        self.moved_to: Path | None = None
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            return _connect(self.path)
        except _Unusable as exc:
            problem = exc
        except _Unwritable as exc:
            return self._in_memory(f"The run store {self.path} cannot be written here ({exc}); this session's runs "
                                   f"are kept in memory only and will not be listed after a restart.")
        except sqlite3.OperationalError:
            return self._in_memory(f"The run store {self.path} is locked by another process; this session's runs "
                                   f"are kept in memory only and will not be listed after a restart.")
        try:
            self.moved_to = _move_aside(self.path)
            db = _connect(self.path)
        except (OSError, sqlite3.Error, _Unusable, _Unwritable) as again:
            return self._in_memory(f"The run store {self.path} could not be used ({problem}) nor replaced ({again}); "
                                   f"this session's runs are kept in memory only.")
        self.recovered_note = (f"The run store {self.path} could not be used ({problem}); it was moved aside to "
                               f"{self.moved_to} and a fresh one was started. Earlier runs are in that file.")
        log.warning(self.recovered_note)
        return db

    def _in_memory(self, note: str) -> sqlite3.Connection:
        self.recovered_note = note
        log.warning(note)
        return _connect(Path(":memory:"))

    def _execute(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """Rows, or none when another process holds the store past LOCK_WAIT_S (reads never hang the UI)."""
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:  # busy past LOCK_WAIT_S, or damaged under us mid-session
                if not _is_locked(exc):
                    self.recovered_note = (f"The run store {self.path} cannot be read ({exc}); runs are not listed "
                                           f"until the app restarts, which moves a damaged store aside.")
                log.warning("run store read failed: %s", exc)
                return []

    def _write(self, record: dict) -> None:
        row = {k: (json.dumps(v, default=str) if k in JSON_COLUMNS else v) for k, v in record.items() if k in COLUMNS}
        updates = ", ".join(f"{k} = :{k}" for k in row if k != "id")
        if updates and self._db.execute(f"UPDATE runs SET {updates} WHERE id = :id", row).rowcount:
            return
        names, marks = ", ".join(row), ", ".join(f":{k}" for k in row)
        self._db.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", row)

    def save(self, record: dict) -> None:
        """Insert a run, or update the given columns of one already stored.

        If another process holds the store, the record waits in memory (merged with any earlier
        pending update of the same run) and goes in with the next save that gets through.
        """
        with self._lock:
            self._pending.setdefault(record["id"], {}).update(record)
            try:
                for run_id in list(self._pending):
                    self._write(self._pending[run_id])
                    del self._pending[run_id]
            except sqlite3.OperationalError as exc:
                if not (_is_locked(exc) or _is_read_only(exc)):
                    raise
                if _is_read_only(exc):  # made read-only mid-session: the runs go on, in memory, and say so
                    self.recovered_note = (f"The run store {self.path} became read-only ({exc}); this session's "
                                           f"newest runs are kept in memory only.")
                log.warning("run store busy, %d record(s) kept in memory: %s", len(self._pending), exc)

    @staticmethod
    def _decode(row: sqlite3.Row) -> dict:
        record = dict(row)
        for column in JSON_COLUMNS:
            try:
                record[column] = json.loads(record[column] or "null")
            except (json.JSONDecodeError, TypeError):  # a row written by something else: show it, empty
                record[column] = None
        return record

    def get(self, run_id: str) -> dict | None:
        rows = self._execute("SELECT * FROM runs WHERE id = ?", (run_id,))
        stored = self._decode(rows[0]) if rows else None
        pending = self._pending.get(run_id)
        return stored if pending is None else {**(stored or {}), **pending}

    def latest(self, key: str, status: str | None = None) -> dict | None:
        sql, params = "SELECT * FROM runs WHERE key = ?", [key]
        if status:
            sql, params = sql + " AND status = ?", params + [status]
        rows = self._execute(sql + " ORDER BY created DESC LIMIT 1", tuple(params))
        return self._decode(rows[0]) if rows else None

    def runs(self, limit: int = 200, kind: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM runs", ()
        if kind:
            sql, params = sql + " WHERE kind = ?", (kind,)
        return [self._decode(r) for r in self._execute(sql + f" ORDER BY created DESC LIMIT {int(limit)}", params)]

    def mark_interrupted(self) -> int:
        """Runs left queued or running by a server that is gone: never 'running' forever."""
        with self._lock:
            try:
                cursor = self._db.execute(
                    "UPDATE runs SET status = 'interrupted', finished = ?, message = 'the server stopped during this run' "
                    "WHERE status IN ('queued', 'running')", (time.time(),))
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise
                return 0  # busy now; the next start catches them
            return cursor.rowcount

    def metrics_csv(self, run_ids: list[str] | None = None) -> str:
        """Runs' metrics as CSV: one row a run, one column a metric."""
        runs = [self.get(i) for i in run_ids] if run_ids else self.runs()
        runs = [r for r in runs if r]
        metric_names = sorted({k for r in runs for k, v in (r["metrics"] or {}).items() if not isinstance(v, (list, dict))})
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([csv_cell(c) for c in ["id", "title", "kind", "status", "seconds", *metric_names]])
        for r in runs:
            seconds = (r["finished"] - r["started"]) if r["finished"] and r["started"] else ""
            writer.writerow([csv_cell(c) for c in [r["id"], r["title"], r["kind"], r["status"], seconds,
                                                   *[(r["metrics"] or {}).get(m, "") for m in metric_names]]])
        return out.getvalue()

    def close(self) -> None:
        with self._lock:
            self._db.close()
