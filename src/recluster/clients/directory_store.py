"""A directory mounted on the nodes as a backup location (Redis Enterprise's `mount_point`), with
the same calls as the S3 adapter (clients/s3.py): files are written under a temporary name and
renamed, so a reader never sees half a file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class DirectoryStoreError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class DirectoryStore:
    def __init__(self, root: str, prefix: str = ""):
        self.root = Path(root)
        self.prefix = prefix.strip("/")

    def __enter__(self) -> DirectoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _path(self, name: str) -> Path:
        relative = f"{self.prefix}/{name}" if self.prefix else name
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise DirectoryStoreError("OutsidePath", f"{name!r} is outside the mount point {self.root}")
        return path

    def check(self) -> None:
        if not self.root.is_dir():
            raise DirectoryStoreError("NoSuchDirectory", f"the mount point {self.root} is not a directory on "
                                                         "this node")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise DirectoryStoreError("AccessDenied", f"the mount point {self.root} is not writable")

    def _write(self, name: str, write: object) -> None:
        path = self._path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            if isinstance(write, bytes):
                partial.write_bytes(write)
            else:
                shutil.copyfile(str(write), partial)
            partial.replace(path)
        except OSError as exc:
            raise DirectoryStoreError("WriteFailed",
                                      f"writing {name} under {self.root}: {exc.strerror}") from None

    def put_bytes(self, data: bytes, name: str) -> None:
        self._write(name, data)

    def upload_file(self, path: Path, name: str) -> None:
        self._write(name, path)

    def get_bytes(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise DirectoryStoreError("NoSuchKey", f"no file {name} under {self.root}") from None
        except OSError as exc:
            raise DirectoryStoreError("ReadFailed",
                                      f"reading {name} under {self.root}: {exc.strerror}") from None

    def download_file(self, name: str, path: Path) -> None:
        try:
            shutil.copyfile(self._path(name), path)
        except FileNotFoundError:
            raise DirectoryStoreError("NoSuchKey", f"no file {name} under {self.root}") from None
        except OSError as exc:
            raise DirectoryStoreError("ReadFailed",
                                      f"reading {name} under {self.root}: {exc.strerror}") from None

    def list_names(self, under: str = "") -> list[str]:
        base = self._path("")
        start = self._path(under) if under else base
        if not start.exists():
            return []
        return sorted(str(p.relative_to(base)) for p in start.rglob("*")
                      if p.is_file() and not p.name.endswith(".partial"))
