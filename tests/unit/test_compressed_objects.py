"""Objects compressed as a Firehose delivery stream's CompressionFormat writes them (SNAPPY: the Snappy framing
format; HADOOP_SNAPPY: Hadoop's block stream; ZIP), as log shippers write zstd, and as rotated logs are (bzip2,
xz), and text as Windows PowerShell writes it (UTF-16, a byte order mark first): the same records, under the same
names, as the plain object. Each form is built here from its format's own description (google/snappy
framing_format.txt; Hadoop's BlockCompressorStream; PKWARE's APPNOTE through Python's zipfile; pyarrow's zstd and raw
Snappy; Python's bz2, lzma and UTF-16 codecs), not by the reader's code."""

import bz2
import codecs
import gzip
import io
import json
import lzma
import struct
import zipfile
import zlib

import pyarrow as pa
import pytest
from conftest import OneObject

from tokenmeter.core.dead_letters import DeadLetter
from tokenmeter.metering.records import RawRecord
from tokenmeter.metering.s3_objects import s3_records

RECORDS = [{"id": f"chatcmpl-{i:06d}", "object": "chat.completion", "created": 1732646400 + i, "model": "gpt-4o",
            "user": f"sub_{i % 7}", "usage": {"prompt_tokens": 10 + i, "completion_tokens": 5},
            "note": "x" * (i % 300)} for i in range(3000)]
PLAIN = "\n".join(json.dumps(record) for record in RECORDS).encode() + b"\n"  # ~600 KB: many chunks and blocks


def raw_snappy(data: bytes) -> bytes:
    return pa.compress(data, codec="snappy", asbytes=True)


_CRC32C = []
for _n in range(256):
    for _ in range(8):
        _n = (_n >> 1) ^ (0x82F63B78 if _n & 1 else 0)
    _CRC32C.append(_n)


def masked_crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), masked as the framing format stores it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _chunk(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "little") + body


def snappy_framed(data: bytes, *, extras: bool = False) -> bytes:
    """The framing format: the stream identifier, then chunks of at most 64 KiB of data, each with the masked
    CRC-32C of its data; compressed where that is shorter, else stored."""
    out = [_chunk(0xFF, b"sNaPpY")]
    for at in range(0, len(data), 65536):
        piece = data[at:at + 65536]
        crc = masked_crc32c(piece)
        packed = raw_snappy(piece)
        out.append(_chunk(0, crc.to_bytes(4, "little") + packed) if len(packed) < len(piece)
                   else _chunk(1, crc.to_bytes(4, "little") + piece))
        if extras and at == 0:  # padding, a skippable chunk, and a second stream's identifier (streams joined)
            out += [_chunk(0xFE, bytes(5)), _chunk(0x80, b"skip me"), _chunk(0xFF, b"sNaPpY")]
    return b"".join(out)


def hadoop_snappy(data: bytes, block: int = 256 * 1024, chunks_per_block: int = 1) -> bytes:
    """Hadoop's BlockCompressorStream: per block its length, then each compressed chunk after its length."""
    out = []
    for at in range(0, len(data), block):
        piece = data[at:at + block]
        out.append(struct.pack(">I", len(piece)))
        step = -(-len(piece) // chunks_per_block)
        for sub in range(0, len(piece), step):
            packed = raw_snappy(piece[sub:sub + step])
            out.append(struct.pack(">I", len(packed)) + packed)
    return b"".join(out)


class _Unseekable(io.RawIOBase):
    """A stream zipfile cannot seek back in, so it writes each member's sizes after its data (flag bit 3)."""

    def __init__(self):
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, b):
        self.data += b
        return len(b)


def zipped(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED, streamed: bool = False) -> bytes:
    sink = _Unseekable() if streamed else io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=method) as archive:
        for name, data in members.items():
            if streamed:
                with archive.open(name, "w") as member:
                    member.write(data)
            else:
                archive.writestr(name, data)
    return bytes(sink.data) if streamed else sink.getvalue()


def read(body: bytes) -> list:
    return list(s3_records(OneObject(body), "logs", "firehose/2026/11/29/06/stream-1-2026-11-29-06-00-00-abc"))


PLAIN_READ = [(r.source, r.identity, r.value) for r in read(PLAIN)]

FORMS = {
    "zstd": pa.compress(PLAIN, codec="zstd", asbytes=True),
    "zstd, two frames": pa.compress(PLAIN[:100_000], codec="zstd", asbytes=True) + pa.compress(
        PLAIN[100_000:], codec="zstd", asbytes=True),
    "snappy framed (Firehose SNAPPY)": snappy_framed(PLAIN),
    "snappy framed, padding and skippable chunks": snappy_framed(PLAIN, extras=True),
    "Hadoop snappy (Firehose HADOOP_SNAPPY)": hadoop_snappy(PLAIN),
    "Hadoop snappy, blocks of several chunks": hadoop_snappy(PLAIN, block=100_000, chunks_per_block=3),
    "zip, deflated (Firehose ZIP)": zipped({"part-0": PLAIN}),
    "zip, stored": zipped({"part-0": PLAIN}, zipfile.ZIP_STORED),
    "zip, written as a stream": zipped({"part-0": PLAIN}, streamed=True),
    "snappy framed around gzip (a log group's payloads, compressed again)": snappy_framed(gzip.compress(PLAIN)),
    "bzip2": bz2.compress(PLAIN),
    "bzip2, 100 kB blocks": bz2.compress(PLAIN, compresslevel=1),
    "bzip2, two streams (cat a.bz2 b.bz2)": bz2.compress(PLAIN[:100_000]) + bz2.compress(PLAIN[100_000:]),
    "xz": lzma.compress(PLAIN),
    "xz, two streams": lzma.compress(PLAIN[:100_000]) + lzma.compress(PLAIN[100_000:]),
    "UTF-16 LE, its byte order mark first (Windows PowerShell's Out-File)": codecs.BOM_UTF16_LE + PLAIN.decode().encode(
        "utf-16-le"),
    "UTF-16 BE, its byte order mark first": codecs.BOM_UTF16_BE + PLAIN.decode().encode("utf-16-be"),
    "gzip around UTF-16": gzip.compress(PLAIN.decode().encode("utf-16")),
    "zip around UTF-16": zipped({"part-0": PLAIN.decode().encode("utf-16")}),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_a_compressed_object_reads_as_the_plain_one(form):
    assert [(r.source, r.identity, r.value) for r in read(FORMS[form])] == PLAIN_READ


def test_the_files_of_a_zip_are_read_one_after_another():
    half = PLAIN.index(b"\n", len(PLAIN) // 2)
    body = zipped({"a": PLAIN[:half], "dir/": b"", "b": PLAIN[half + 1:]}, streamed=True)
    assert [r.value for r in read(body)] == RECORDS


@pytest.mark.parametrize("form", ["zstd", "snappy framed (Firehose SNAPPY)", "Hadoop snappy (Firehose HADOOP_SNAPPY)",
                                  "zip, deflated (Firehose ZIP)", "bzip2, 100 kB blocks", "xz"])
def test_an_object_cut_short_is_its_records_then_one_letter(form):
    body = FORMS[form]
    items = read(body[:len(body) // 2])
    records = [item for item in items if isinstance(item, RawRecord) and item.value is not None]
    letters = [item for item in items if isinstance(item, DeadLetter)]
    assert 0 < len(records) < len(RECORDS) and [r.value for r in records] == RECORDS[:len(records)]
    assert [letter.reason for letter in letters][-1] == "decode_error"


def test_a_zip_of_thousands_of_files_reads_each():
    body = zipped({f"part-{i}": json.dumps(record).encode() for i, record in enumerate(RECORDS)}, streamed=True)
    assert [r.value for r in read(body)] == RECORDS


def test_every_format_s_first_byte_sends_the_object_to_the_inflating_reader():
    # s3_objects imports compressed.py only for an object whose first byte may begin one of its formats.
    from tokenmeter.metering.s3_objects import COMPRESSED_FIRST_BYTES

    assert {form[:1] for form in FORMS.values() if not form.startswith(b"\x1f\x8b")} <= COMPRESSED_FIRST_BYTES


def test_utf16_text_outside_ascii_with_windows_line_ends_reads_as_its_utf8():
    text = ('{"id":"a","model":"gpt-4o","user":"M\u00fcller \U0001f600","usage":{"prompt_tokens":3,"completion_tokens":2}}'
            '\r\n{"id":"b","model":"gpt-4o","user":"\u4e2d\u6587","usage":{"prompt_tokens":4,"completion_tokens":1}}\r\n')
    as_utf8 = [(r.source, r.value) for r in read(text.encode())]
    assert [value["user"] for _, value in as_utf8] == ["M\u00fcller \U0001f600", "\u4e2d\u6587"]
    for body in (text.encode("utf-16"), codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
                 gzip.compress(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))):
        assert [(r.source, r.value) for r in read(body)] == as_utf8


@pytest.mark.parametrize(("damage", "why"), [
    (lambda body: body[:-1], "the object ends inside a character"),
    # A high surrogate (D800) followed by a letter, not by its low half.
    (lambda body: body[:200_002] + b"\x00\xd8A\x00" + body[200_002:], "illegal UTF-16 surrogate"),
])
def test_damaged_utf16_is_its_records_then_one_letter(damage, why):
    body = damage(FORMS["UTF-16 LE, its byte order mark first (Windows PowerShell's Out-File)"])
    items = read(body)
    records = [item.value for item in items if isinstance(item, RawRecord)]
    letters = [item for item in items if isinstance(item, DeadLetter)]
    assert len(records) > 0 and records == RECORDS[:len(records)]
    assert [letter.reason for letter in letters] == ["decode_error"] and why in letters[0].detail


SMALL = PLAIN[:PLAIN.index(b"\n", 6000) + 1]  # ~6 KB: less than one read of the object or of what it inflates to
# Each compressor, and the standard library's decompressor that tells what a stream cut short still gives.
_CUT_SHORT = {
    "gzip": (gzip.compress, lambda: zlib.decompressobj(wbits=31)),
    "xz": (lzma.compress, lzma.LZMADecompressor),
    "bzip2": (bz2.compress, bz2.BZ2Decompressor),
}


@pytest.mark.parametrize("form", list(_CUT_SHORT))
@pytest.mark.parametrize(("plain", "kept"), [(SMALL, 0.3), (SMALL, 0.5), (SMALL, 0.8), (PLAIN, 0.5)])
def test_an_object_cut_short_bills_each_line_it_still_holds_whole(form, plain, kept):
    # A buffered read of the inflated stream asks for 64 KiB, and dropped what it had when the stream then failed: a
    # small object cut short was one letter, a large one lost the lines of its last read. Now: the lines a
    # decompressor gets whole, then one letter.
    compress, decompressor = _CUT_SHORT[form]
    body = compress(plain)
    cut = body[:int(len(body) * kept)]
    whole_lines = decompressor().decompress(cut).split(b"\n")[:-1]
    items = read(cut)
    assert [item.value for item in items if isinstance(item, RawRecord)] == [json.loads(line) for line in whole_lines]
    assert [item.reason for item in items if isinstance(item, DeadLetter)] == ["decode_error"]
    # (Half of a gzip or xz stream holds whole lines; bzip2 gives nothing of a block cut short.)
    assert len(whole_lines) > 0 or kept < 0.5 or form == "bzip2"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_small_utf16_object_damaged_bills_each_line_before_the_damage(encoding):
    text = SMALL.decode()
    at = len(text) // 2  # a character's place: the damage is a high surrogate followed by a letter, not its low half
    lone = "\ud800A".encode(encoding, "surrogatepass")
    bom = codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE
    body = bom + text[:at].encode(encoding) + lone + text[at:].encode(encoding)
    items = read(body)
    before = text[:at].split("\n")[:-1]
    assert [item.value for item in items if isinstance(item, RawRecord)] == [json.loads(line) for line in before]
    letters = [item for item in items if isinstance(item, DeadLetter)]
    assert [letter.reason for letter in letters] == ["decode_error"]
    assert f"after line {len(before)}" in letters[0].detail and "illegal UTF-16 surrogate" in letters[0].detail


def _whole_elements(text: str) -> list:
    """The elements of a JSON array that ``text`` (its beginning) holds whole, read with the standard library."""
    decoder, found, at = json.JSONDecoder(), [], text.index("[") + 1
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        try:
            element, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return found
        found.append(element)


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("kept", [0.5, 0.8])
def test_an_array_object_cut_short_bills_each_element_it_still_holds_whole(indent, kept):
    # A JSON export (one array, on one line or pretty-printed), gzipped and cut short: it was one letter.
    body = gzip.compress(json.dumps(RECORDS[:200], indent=indent).encode())
    cut = body[:int(len(body) * kept)]
    expected = _whole_elements(zlib.decompressobj(wbits=31).decompress(cut).decode())
    items = read(cut)
    records = [item for item in items if isinstance(item, RawRecord)]
    assert [record.value for record in records] == expected and len(expected) > 10
    assert [item.reason for item in items if isinstance(item, DeadLetter)] == ["decode_error"]
    # Each under the name and id an array read whole gives its element (a retry of the object bills nothing twice).
    whole = [(r.source, r.identity) for r in read(body) if isinstance(r, RawRecord)]
    assert [(r.source, r.identity) for r in records] == whole[:len(records)]
