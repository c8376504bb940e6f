"""The run store: every job with its config, status, metrics, timings and artifacts, in SQLite (WAL).

Arrays live beside it as checksummed npz files (see artifacts.py); the store records their paths.
"""
from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
from pathlib import Path

from ptm_core.paths import data_dir

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


def default_store_path() -> Path:
    return data_dir() / "runs.sqlite"


class RunStore:
    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def _execute(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def save(self, record: dict) -> None:
        """Insert a run, or update the given columns of one already stored."""
        row = {k: (json.dumps(v, default=str) if k in JSON_COLUMNS else v) for k, v in record.items() if k in COLUMNS}
        updates = ", ".join(f"{k} = :{k}" for k in row if k != "id")
        with self._lock:
            if updates and self._db.execute(f"UPDATE runs SET {updates} WHERE id = :id", row).rowcount:
                return
            names, marks = ", ".join(row), ", ".join(f":{k}" for k in row)
            self._db.execute(f"INSERT INTO runs ({names}) VALUES ({marks})", row)

    @staticmethod
    def _decode(row: sqlite3.Row) -> dict:
        record = dict(row)
        for column in JSON_COLUMNS:
            record[column] = json.loads(record[column] or "null")
        return record

    def get(self, run_id: str) -> dict | None:
        rows = self._execute("SELECT * FROM runs WHERE id = ?", (run_id,))
        return self._decode(rows[0]) if rows else None

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
            cursor = self._db.execute(
                "UPDATE runs SET status = 'interrupted', finished = ?, message = 'the server stopped during this run' "
                "WHERE status IN ('queued', 'running')", (time.time(),))
            return cursor.rowcount

    def metrics_csv(self, run_ids: list[str] | None = None) -> str:
        """Runs' metrics as CSV: one row a run, one column a metric."""
        runs = [self.get(i) for i in run_ids] if run_ids else self.runs()
        runs = [r for r in runs if r]
        metric_names = sorted({k for r in runs for k, v in (r["metrics"] or {}).items() if not isinstance(v, (list, dict))})
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "title", "kind", "status", "seconds", *metric_names])
        for r in runs:
            seconds = (r["finished"] - r["started"]) if r["finished"] and r["started"] else ""
            writer.writerow([r["id"], r["title"], r["kind"], r["status"], seconds,
                             *[(r["metrics"] or {}).get(m, "") for m in metric_names]])
        return out.getvalue()

    def close(self) -> None:
        with self._lock:
            self._db.close()
