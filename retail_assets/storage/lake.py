"""The data lake as a filesystem abstraction (pyarrow.fs), so the lake may be local, hdfs:// or s3.

Spark reads and writes table data; this module does the few non-Spark things the pipeline
needs on lake paths: copying landed files in, small JSON manifests and markers, and the
exported files (the exports folder is a location of the same kind).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from pyarrow import fs

COPY_CHUNK = 8 << 20


@dataclass(frozen=True)
class CopiedFile:
    """What was learnt about a file while copying it: enough for the manifest and checks."""

    size: int
    sha256: str
    lines: int  # lines as Spark's text reader splits them (\n, \r\n or a lone \r)
    header: str  # first line, decoded with replacement, BOM stripped


class Lake:
    def __init__(self, root: str):
        # Hadoop's s3a:// scheme is the same store that pyarrow calls s3://.
        uri = "s3://" + root[len("s3a://") :] if root.startswith("s3a://") else root
        self.fs, base = fs.FileSystem.from_uri(uri if "://" in uri else str(Path(uri).resolve()))
        self.base = base.rstrip("/")
        self.root = root.rstrip("/")

    def path(self, *parts: str) -> str:
        """The path inside the lake's filesystem (what pyarrow calls)."""
        return "/".join([self.base, *parts])

    def uri(self, *parts: str) -> str:
        """The same location as Spark should be given it."""
        return "/".join([self.root, *parts])

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type != fs.FileType.NotFound

    def list_names(self, *parts: str) -> list[str]:
        """The names in a folder (none if it does not exist)."""
        selector = fs.FileSelector(self.path(*parts), allow_not_found=True)
        return sorted(info.base_name for info in self.fs.get_file_info(selector))

    def read_bytes(self, *parts: str) -> bytes | None:
        if not self.exists(*parts):
            return None
        with self.fs.open_input_stream(self.path(*parts)) as stream:
            return stream.read()

    def write_bytes(self, data: bytes, *parts: str) -> str:
        """Write then move into place, so a reader sees the old or the new file, whole."""
        target = self.path(*parts)
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        temp = f"{target}.{uuid.uuid4().hex}.tmp"
        with self.fs.open_output_stream(temp) as stream:
            stream.write(data)
        self.fs.move(temp, target)
        return self.uri(*parts)

    def read_json(self, *parts: str) -> dict | None:
        data = self.read_bytes(*parts)
        return None if data is None else json.loads(data.decode())

    def write_json(self, document: dict, *parts: str) -> None:
        self.write_bytes(json.dumps(document, indent=2, sort_keys=True).encode(), *parts)

    def copy_in(self, source: Path, *parts: str) -> CopiedFile:
        """Copy a local file into the lake in one pass that also hashes it and counts its lines."""
        target = self.path(*parts)
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        digest, size, counter = hashlib.sha256(), 0, _LineCounter()
        temp = f"{target}.{uuid.uuid4().hex}.tmp"
        with open(source, "rb") as src, self.fs.open_output_stream(temp) as dst:
            while chunk := src.read(COPY_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                counter.feed(chunk)
                dst.write(chunk)
        self.fs.move(temp, target)
        return CopiedFile(size, digest.hexdigest(), counter.lines, counter.header())


class _LineCounter:
    """Counts lines the way Hadoop's LineRecordReader splits them, across chunk boundaries."""

    def __init__(self):
        self._terminators = 0
        self._last = b""
        self._head = b""

    def feed(self, chunk: bytes) -> None:
        if len(self._head) < 65536:
            self._head += chunk[:65536]
        split_crlf = self._last == b"\r" and chunk[:1] == b"\n"
        self._terminators += (
            chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n") - split_crlf
        )
        self._last = chunk[-1:]

    @property
    def lines(self) -> int:
        """Terminated lines, plus a last line without a terminator."""
        return self._terminators + (self._last not in (b"", b"\n", b"\r"))

    def header(self) -> str:
        first = re.split(rb"\r\n|\r|\n", self._head, maxsplit=1)[0]
        return first.decode("utf-8", errors="replace").lstrip("\ufeff")
