"""The data lake as a filesystem abstraction (pyarrow.fs), so the lake may be local, hdfs:// or s3.

Spark reads and writes table data; this module does the few non-Spark things the pipeline
needs on lake paths: copying landed files in, small JSON manifests and markers, and the
exported files (the exports folder is a location of the same kind).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from pyarrow import fs

from retail_assets.storage.failpoints import failpoint

COPY_CHUNK = 8 << 20


@dataclass(frozen=True)
class CopiedFile:
    """What was learnt about a file while copying it: enough for the manifest and checks."""

    size: int
    sha256: str
    records: int  # CSV records, header included; a quoted line break does not end one
    valid_utf8: bool
    header: str  # first line, decoded with replacement, BOM stripped
    ends_with_line_break: bool  # else its last record may be cut off (an empty file: True)


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
        """Write then move into place, so a reader sees the old or the new file, whole. The
        temporary file is hidden (a partner's `*.csv` never matches it); one a killed write
        left is removed by the next write of the same file."""
        target = self.path(*parts)
        temp = self._temporary(target)
        with self.fs.open_output_stream(temp) as stream:
            stream.write(data)
        self._move_into_place(temp, target, "write_bytes")
        return self.uri(*parts)

    def _temporary(self, target: str) -> str:
        """A hidden name beside `target` (a partner's `*.csv` never matches it); its folder is
        made."""
        folder, name = target.rsplit("/", 1)
        self.fs.create_dir(folder, recursive=True)
        return f"{folder}/.{name}.{uuid.uuid4().hex}.tmp"

    def _move_into_place(self, temp: str, target: str, step: str) -> None:
        """Move `temp` over `target`, then remove the temporaries of `target` that killed
        writes left behind."""
        folder, name = target.rsplit("/", 1)
        failpoint(f"{step}:{name}")
        self.fs.move(temp, target)
        for info in self.fs.get_file_info(fs.FileSelector(folder)):
            if info.base_name.startswith(f".{name}.") and info.base_name.endswith(".tmp"):
                self.fs.delete_file(info.path)

    def read_json(self, *parts: str) -> dict | None:
        data = self.read_bytes(*parts)
        return None if data is None else json.loads(data.decode())

    def write_json(self, document: dict, *parts: str) -> None:
        self.write_bytes(json.dumps(document, indent=2, sort_keys=True).encode(), *parts)

    def copy_in(self, source: Path, *parts: str) -> CopiedFile:
        """Copy a local file into the lake in one pass that hashes it, counts its records and
        checks its encoding."""
        target = self.path(*parts)
        digest, size, counter = hashlib.sha256(), 0, _RecordCounter()
        temp = self._temporary(target)
        with open(source, "rb") as src, self.fs.open_output_stream(temp) as dst:
            while chunk := src.read(COPY_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                counter.feed(chunk)
                dst.write(chunk)
        self._move_into_place(temp, target, "copy_in")
        return CopiedFile(
            size,
            digest.hexdigest(),
            counter.records,
            counter.valid_utf8(),
            counter.header(),
            counter.ends_with_line_break,
        )


class _RecordCounter:
    """Counts CSV records (RFC 4180) the way the silver reader joins lines, across chunks.

    A record ends at `\n`, `\r\n` or a lone `\r` outside quotes; a line break inside a quoted
    field belongs to the record. Every `"` toggles "inside quotes" (a doubled quote toggles
    twice), so quoted sections are swapped for one placeholder byte by a C-level regex and
    the terminators left are counted: no Python loop over lines.
    """

    _QUOTED = re.compile(rb'"[^"]*"')

    def __init__(self):
        self._terminators = 0
        self._last = b""
        self._final = b""  # the file's last byte so far, as it is (not in the quote-free copy)
        self._head = b""
        self._quoted = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._valid = True

    def feed(self, chunk: bytes) -> None:
        if len(self._head) < 65536:
            self._head += chunk[:65536]
        self._check_utf8(chunk)
        self._final = chunk[-1:] or self._final
        if self._quoted:  # the chunk starts inside a quoted field
            close = chunk.find(b'"')
            if close < 0:
                self._last = b"q"
                return
            chunk, self._quoted = b"q" + chunk[close + 1 :], False
        chunk = self._QUOTED.sub(b"q", chunk)
        opened = chunk.find(b'"')
        if opened >= 0:  # a quoted field goes on into the next chunk
            chunk, self._quoted = chunk[:opened] + b"q", True
        split_crlf = self._last == b"\r" and chunk[:1] == b"\n"
        self._terminators += (
            chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n") - split_crlf
        )
        self._last = chunk[-1:] or self._last

    def _check_utf8(self, chunk: bytes, final: bool = False) -> None:
        if self._valid:
            try:
                self._utf8.decode(chunk, final)
            except UnicodeDecodeError:
                self._valid = False

    def valid_utf8(self) -> bool:
        """Whether the whole file is valid UTF-8 (a BOM is)."""
        self._check_utf8(b"", final=True)
        return self._valid

    @property
    def records(self) -> int:
        """Terminated records, plus a last record without a terminator."""
        return self._terminators + (self._last not in (b"", b"\n", b"\r"))

    @property
    def ends_with_line_break(self) -> bool:
        return self._final in (b"", b"\n", b"\r")

    def header(self) -> str:
        first = re.split(rb"\r\n|\r|\n", self._head, maxsplit=1)[0]
        return first.decode("utf-8", errors="replace").lstrip("\ufeff")
