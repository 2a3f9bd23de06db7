"""The broker's state in sqlite on its volume: instances, bindings and operations, each a JSON
document keyed by its ids. Every change is one transaction, so a broker killed at any moment
restarts from a consistent state and resumes the operations still 'in progress'.

The database passwords are not stored (the cluster keeps them; the broker reads one when a binding
made before bindings had users is returned). A binding's own password is: the cluster keeps only
hashes of it, and the platform may fetch the binding again. The file is private to the broker
(mode 0600, on its own volume)."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from recluster.broker.models import Binding, Instance, Operation

SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, state TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bindings (instance_id TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,
                                     PRIMARY KEY (instance_id, id));
CREATE TABLE IF NOT EXISTS operations (id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, state TEXT NOT NULL,
                                       started REAL NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS operations_by_instance ON operations (instance_id, started);
"""
DB_FILE = "broker.sqlite3"


class Store:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_FILE
        if not self.path.exists():
            # created private: the records hold request parameters
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        # One connection, used from the event loop and (rarely) a worker thread: serialized by a lock.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged 202 survives a crash
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- reads ---------------------------------------------------------------------------

    def instance(self, instance_id: str) -> Instance | None:
        row = self._one("SELECT doc FROM instances WHERE id = ?", (instance_id,))
        return Instance.model_validate_json(row) if row else None

    def binding(self, instance_id: str, binding_id: str) -> Binding | None:
        row = self._one("SELECT doc FROM bindings WHERE instance_id = ? AND id = ?",
                        (instance_id, binding_id))
        return Binding.model_validate_json(row) if row else None

    def bindings_of(self, instance_id: str) -> list[Binding]:
        rows = self._all("SELECT doc FROM bindings WHERE instance_id = ? ORDER BY id", (instance_id,))
        return [Binding.model_validate_json(r) for r in rows]

    def bindings_in_state(self, state: str) -> list[Binding]:
        """Every instance's bindings in that state (few: those an unbind was in the middle of)."""
        rows = self._all("SELECT doc FROM bindings ORDER BY instance_id, id", ())
        return [b for b in (Binding.model_validate_json(r) for r in rows) if b.state == state]

    def operation(self, operation_id: str) -> Operation | None:
        row = self._one("SELECT doc FROM operations WHERE id = ?", (operation_id,))
        return Operation.model_validate_json(row) if row else None

    def operations_of(self, instance_id: str) -> list[Operation]:
        """Newest first."""
        rows = self._all("SELECT doc FROM operations WHERE instance_id = ? ORDER BY started DESC, rowid DESC",
                         (instance_id,))
        return [Operation.model_validate_json(r) for r in rows]

    def current_operation(self, instance_id: str) -> Operation | None:
        ops = self.operations_of(instance_id)
        return ops[0] if ops else None

    def unfinished_operations(self) -> list[Operation]:
        rows = self._all("SELECT doc FROM operations WHERE state = 'in progress' ORDER BY started", ())
        return [Operation.model_validate_json(r) for r in rows]

    # ---- writes (each call is one transaction) ------------------------------------------

    def save(self, *, instance: Instance | None = None, operation: Operation | None = None,
             binding: Binding | None = None, delete_binding: tuple[str, str] | None = None,
             delete_bindings_of: str | None = None) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if instance is not None:
                    self._db.execute("INSERT OR REPLACE INTO instances (id, state, doc) VALUES (?, ?, ?)",
                                     (instance.id, instance.state, instance.model_dump_json()))
                if operation is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO operations (id, instance_id, state, started, doc) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (operation.id, operation.instance_id, operation.state, operation.started,
                         operation.model_dump_json()))
                if binding is not None:
                    self._db.execute("INSERT OR REPLACE INTO bindings (instance_id, id, doc) "
                                     "VALUES (?, ?, ?)",
                                     (binding.instance_id, binding.id, binding.model_dump_json()))
                if delete_binding is not None:
                    self._db.execute("DELETE FROM bindings WHERE instance_id = ? AND id = ?", delete_binding)
                if delete_bindings_of is not None:
                    self._db.execute("DELETE FROM bindings WHERE instance_id = ?", (delete_bindings_of,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ---- helpers ---------------------------------------------------------------------------

    def _one(self, sql: str, args: tuple[str, ...]) -> str | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return str(row[0]) if row else None

    def _all(self, sql: str, args: tuple[str, ...]) -> list[str]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [str(r[0]) for r in rows]
