"""Thrift's compact protocol, read into plain values: a struct is a dict of field id -> value (Parquet's footer
and page headers are written this way; apache/thrift doc/specs/thrift-compact-protocol.md)."""

from __future__ import annotations

import struct
from typing import Any

_DOUBLE = struct.Struct("<d")


class ThriftError(ValueError):
    """Bytes that are not a compact-protocol struct."""


class Reader:
    def __init__(self, data: bytes | memoryview, pos: int = 0):
        self.data, self.pos = data, pos

    def struct(self) -> dict[int, Any]:
        fields: dict[int, Any] = {}
        last = 0
        while True:
            header = self._byte()
            if header == 0:
                return fields
            kind, delta = header & 0x0F, header >> 4
            last = last + delta if delta else _unzigzag(self._varint())
            fields[last] = self._value(kind)

    def _value(self, kind: int) -> Any:
        if kind in (1, 2):  # a boolean field: its value is its type
            return kind == 1
        if kind == 3:
            value = self._byte()
            return value - 256 if value > 127 else value
        if kind in (4, 5, 6):
            return _unzigzag(self._varint())
        if kind == 7:
            value = _DOUBLE.unpack_from(self.data, self.pos)[0]
            self.pos += 8
            return value
        if kind == 8:
            size = self._varint()
            if self.pos + size > len(self.data):
                raise ThriftError("a binary field runs past the data")
            value = bytes(self.data[self.pos:self.pos + size])
            self.pos += size
            return value
        if kind in (9, 10):
            header = self._byte()
            size, element = header >> 4, header & 0x0F
            if size == 15:
                size = self._varint()
            if element in (1, 2):  # booleans in a collection: a byte each
                return [self._byte() == 1 for _ in range(size)]
            return [self._value(element) for _ in range(size)]
        if kind == 11:
            size = self._varint()
            if not size:
                return {}
            types = self._byte()
            return {self._value(types >> 4): self._value(types & 0x0F) for _ in range(size)}
        if kind == 12:
            return self.struct()
        raise ThriftError(f"unknown compact type {kind}")

    def _byte(self) -> int:
        if self.pos >= len(self.data):
            raise ThriftError("the struct runs past the data")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def _varint(self) -> int:
        value, self.pos = varint(self.data, self.pos)
        return value


def varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The unsigned LEB128 number at ``pos`` (thrift's varints, Parquet's run headers, Snappy's length) and where it
    ends."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ThriftError("a varint runs past the data")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 70:
            raise ThriftError("a varint longer than 10 bytes")


def _unzigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def read_struct(data: bytes | memoryview, pos: int = 0) -> tuple[dict[int, Any], int]:
    """The struct at ``pos`` and where it ends."""
    reader = Reader(data, pos)
    return reader.struct(), reader.pos
