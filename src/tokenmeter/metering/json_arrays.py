"""A JSON array too large to parse whole, read element by element (s3_objects.py).

Exporters write a whole file as one array: Langfuse's blob storage export with its file type set to JSON puts an
hour's observations in `[{...},{...},...]` on one line (langfuse: transformStreamToJson), which passes the metering
config's `max_record_bytes` at a few thousand observations with their prompts. Read as a line, such a file was one
`record_too_large` letter and nothing billed. Here the array's text is decoded as it is read and each element parsed
as soon as it is whole, so memory holds about one element. An element past `max_record_bytes` is a letter of its own,
as a long line is; text that is not JSON, or an element that does not end within `max_record_bytes` (its end cannot
be found without reading it whole), ends the reading with one letter for the rest, naming the element it stopped at
(the elements before it are records already). What follows the array goes back to the line-by-line reading (JSON
Lines whose first line is an array). An object that only begins with "[" (a log line "[INFO] ...") is no array.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Generator
from typing import Any

from tokenmeter.core.dead_letters import DeadLetter

from .records import (
    DECODE_ERROR,
    OBJECT_TOO_LARGE,
    RECORD_TOO_LARGE,
    TOO_MANY_DEAD_LETTERS,
    DeadLetterBudget,
    RawRecord,
    ReadLimits,
)

_CHUNK = 1 << 20
_DECODER = json.JSONDecoder()
_SPACE = " \t\r\n"
_NUMBER_GOES_ON = re.compile(r"[0-9.eE+\-]*\Z")
_KEEP = 1 << 20  # consumed text is dropped once this much of it piles up at the front


class _Text:
    """The object's text, decoded as it is read; consumed from the front."""

    def __init__(self, head: bytes, body: Any, max_bytes: int):
        self.head, self.body, self.max_bytes = head, body, max_bytes
        self.text, self.at = "", 0  # what is decoded, and where the unconsumed part begins
        self.read_bytes = 0
        self.ended = self.truncated = self.lossy = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._newlines, self._counted = 0, 0  # line breaks in the text before ``_counted``, dropped text's included

    def more(self) -> bool:
        """Read and decode another chunk; False once the object (or what may be read of it) is all read."""
        if self.ended:
            return False
        if self.read_bytes < len(self.head):  # what was read ahead, first
            chunk = self.head[self.read_bytes:self.read_bytes + _CHUNK]
        else:
            chunk = self.body.read(_CHUNK)
        if self.read_bytes + len(chunk) > self.max_bytes:
            chunk, self.truncated = chunk[: self.max_bytes - self.read_bytes], True
        self.read_bytes += len(chunk)
        final = not chunk or self.truncated
        try:
            decoded = self._utf8.decode(chunk, final)
        except UnicodeDecodeError:  # replaced (and flagged) rather than lost, as a JSON line's
            self.lossy = True
            decoded = chunk.decode("utf-8", "replace")
            self._utf8.reset()
        if self.at > _KEEP:
            self.line_of(self.at)
            self.text, self.at, self._counted = self.text[self.at:], 0, 0
        self.text += decoded
        self.ended = final
        return bool(decoded) or not final

    def rest(self) -> bytes:
        """The bytes not consumed of what was read, in the order they came."""
        pending = self._utf8.getstate()[0]
        return self.text[self.at:].encode("utf-8", "surrogatepass") + pending + self.head[self.read_bytes:]

    def line_of(self, position: int) -> int:
        """The object's line that ``position`` (at or after the last asked about) is on."""
        self._newlines += self.text.count("\n", self._counted, position)
        self._counted = position
        return self._newlines + 1

    def skip_space(self) -> str:
        """The next character that is not JSON whitespace ("" at the end), not consumed."""
        while True:
            self.at = _after_space(self.text, self.at)
            if self.at < len(self.text):
                return self.text[self.at]
            if not self.more():
                return ""


def begins_an_array(ahead: bytes) -> bool:
    """Whether ``ahead`` (an object's first bytes, the first not space a "[") begins a JSON array: its first element
    is JSON, followed by "," or "]". A log line such as "[INFO] ..." or "[2026-11-29 06:00:00] ..." is not."""
    for sample in (ahead[:_CHUNK], ahead):  # the first element is short, or (seldom) the whole read is needed
        text = sample.decode("utf-8", "replace")
        at = _after_space(text, _after_space(text, 0) + 1)
        if at == len(text) or text[at] == "]":
            return True
        try:
            _, end = _DECODER.raw_decode(text, at)
        except json.JSONDecodeError:
            if len(sample) < len(ahead):
                continue  # perhaps only cut short by the sample
            return len(ahead) >= _CHUNK  # an element longer than all read ahead: the reading will say what it is
        except RecursionError:
            return True
        end = _after_space(text, end)
        return end == len(text) or text[end] in ",]"
    return False


def _after_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in _SPACE:
        at += 1
    return at


def array_elements(head: bytes, body: Any, where: str, identity: str, fallback: int | None, limits: ReadLimits,
                   budget: DeadLetterBudget) -> Generator[RawRecord | DeadLetter, None, tuple[bytes, int, int] | None]:
    """Each element of the array that ``head`` (read ahead) and then ``body`` hold (begins_an_array) a record, named
    by its index as a short array read whole is: ``#line=<n>[i]`` for an array on one line, else ``[i]``.

    Returns what follows the array, to be read as any object's lines (JSON Lines whose first line is an array): the
    bytes read past its "]" (``body`` holds the rest), the number of the line they begin on and their offset in the
    object; None where the reading ended with a letter."""
    text = _Text(head, body, limits.max_object_bytes)
    text.skip_space()
    start = text.at
    line = text.line_of(start)
    text.at += 1
    names = (f"{where}#line={line}[", f"{identity}#{line}[")
    if text.skip_space() not in ("]", "") and "\n" in text.text[start:text.at]:
        names = (f"{where}[", f"{identity}[")  # a pretty-printed array, as a document read whole names it
    if not (yield from _elements(text, names, where, fallback, limits, budget)):
        return None
    text.at += 1  # its "]"
    rest = text.rest()
    return rest, text.line_of(text.at), text.read_bytes + len(text.head[text.read_bytes:]) - len(rest)


def _elements(text: _Text, names: tuple[str, str], where: str, fallback: int | None, limits: ReadLimits,
              budget: DeadLetterBudget) -> Generator[RawRecord | DeadLetter, None, bool]:
    """The elements of the array whose "[" was read, up to its "]" (not consumed); returns whether the reading may
    go on after it."""
    index, (source, key) = 0, names
    while True:
        if where in budget.exhausted:
            budget.note(where)
            yield DeadLetter(TOO_MANY_DEAD_LETTERS, f"more than {budget.cap} dead letters: elements from {index:,} on "
                             "were not read; backfill the object once fixed", where, "")
            return False
        if text.skip_space() == "]":
            return True
        start = text.at
        found = _element(text, limits.max_record_bytes)
        if isinstance(found, DeadLetter):
            yield DeadLetter(found.reason, f"element {index:,} of the array: {found.detail}", where, "")
            return False
        yield _record(text, start, found, (f"{source}{index}]", f"{key}{index}]"), f"element {index:,} of the array",
                      where, fallback, limits, budget)
        index += 1
        after = text.skip_space()
        if after == ",":
            text.at += 1
        elif after != "]":
            why = (f"the object inflates past {limits.max_object_bytes:,} bytes" if text.truncated
                   else "the array ends without its ]" if after == "" else f"{after!r} where , or ] must come")
            reason = OBJECT_TOO_LARGE if text.truncated else DECODE_ERROR
            yield DeadLetter(reason, f"after element {index - 1:,} of the array: {why}; the rest was not read",
                             where, "")
            return False


def _record(text: _Text, start: int, value: Any, names: tuple[str, str], what: str, where: str, fallback: int | None,
            limits: ReadLimits, budget: DeadLetterBudget) -> RawRecord | DeadLetter:
    """The record a value read whole makes; one past the size of a record is a letter, as a long line is."""
    lossy, text.lossy = text.lossy, False
    if text.at - start > limits.max_record_bytes:
        budget.note(where)
        return DeadLetter(RECORD_TOO_LARGE, f"{what}: {text.at - start:,} characters, past max_record_bytes "
                          f"({limits.max_record_bytes:,})", names[0], "")
    return RawRecord(names[0], names[1], "", fallback, value=value, lossy=lossy, origin=where)


def _element(text: _Text, max_bytes: int) -> Any:
    """The value that begins at ``text.at`` (consumed), or a DeadLetter saying why there is none."""
    while True:
        start = text.at
        try:
            value, end = _DECODER.raw_decode(text.text, start)
            # A number may go on in the next chunk ("1" of "12", "0." of "0.5", "1e" of "1e6"); anything else ends
            # where it ends, as does a number before any other character.
            if text.ended or type(value) not in (int, float) or not _NUMBER_GOES_ON.match(text.text, end):
                text.at = end
                return value
        except json.JSONDecodeError as exc:
            if text.ended:
                return DeadLetter(OBJECT_TOO_LARGE if text.truncated else DECODE_ERROR,
                                  f"not JSON ({exc.msg})" if not text.truncated else
                                  f"the object inflates past {text.max_bytes:,} bytes", "", "")
        except RecursionError:
            return DeadLetter(DECODE_ERROR, "JSON nested too deeply", "", "")
        if len(text.text) - start > max_bytes:  # (characters, at most as many as the bytes they were)
            return DeadLetter(RECORD_TOO_LARGE, f"larger than max_record_bytes ({max_bytes:,})", "", "")
        text.more()
