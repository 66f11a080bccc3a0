"""An S3 object's lines as its reader numbers them, whatever sizes its stream hands the bytes out in: the
same lines, numbers and offsets as splitting the whole object at once gives (worked out here with
bytes.split), so that a line's name and id never depend on where a read happened to stop."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tokenmeter.metering.records import ReadLimits
from tokenmeter.metering.s3_objects import _Lines


class PiecewiseBody:
    """A stream whose every read gives at most the next of ``sizes`` bytes, as a network read may."""

    def __init__(self, data: bytes, sizes: list[int]):
        self.data, self.sizes, self.at = data, sizes, 0

    def read1(self, size: int) -> bytes:
        step = self.sizes.pop(0) if self.sizes else size
        piece = self.data[self.at:self.at + min(step, size)]
        self.at += len(piece)
        return piece


def expected_lines(data: bytes) -> list[tuple[int, int, bytes]]:
    pieces = data.split(b"\n")
    if pieces[-1] == b"":  # the object ends a line (or is empty): no line after it
        pieces.pop()
    found, offset = [], 0
    for number, piece in enumerate(pieces, start=1):
        found.append((number, offset, piece))
        offset += len(piece) + 1
    return found


line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"x"))
objects = st.lists(line_bytes, max_size=12).flatmap(
    lambda lines: st.sampled_from([b"\n".join(lines), b"\n".join(lines) + b"\n"]))


@given(objects, st.lists(st.integers(1, 50), max_size=30))
def test_lines_do_not_depend_on_the_reads_sizes(data, sizes):
    lines = _Lines(PiecewiseBody(data, list(sizes)), ReadLimits())
    assert list(lines) == expected_lines(data)


def test_one_document_with_and_without_its_line_end():
    document = b'{"resourceSpans": []}'
    assert list(_Lines(PiecewiseBody(document, []), ReadLimits())) == [(1, 0, document)]
    assert list(_Lines(PiecewiseBody(document + b"\n", []), ReadLimits())) == [(1, 0, document)]
    assert list(_Lines(PiecewiseBody(b"a\nbc\n\nd", [3]), ReadLimits())) == [
        (1, 0, b"a"), (2, 2, b"bc"), (3, 5, b""), (4, 6, b"d")]
