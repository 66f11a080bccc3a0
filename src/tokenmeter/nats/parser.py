"""nats-py's protocol parser, with a short way through the messages at the front of what it has read.

nats-py's ``Parser`` tries a regular expression per operation on every control line and keeps each message's
arguments in a dict between two states. Here a whole ``MSG`` or ``HMSG`` (control line and payload read) whose
control line is its words with one space between is taken by splitting that line, and handed to the client as
nats-py hands it. Anything else (other operations, a message not yet whole, a control line written otherwise) goes
to nats-py's own ``parse``, unchanged. Measured alone (500 messages in reads of 64 KiB), a ledger message's HMSG
2.7 us in place of 3.4, a PubAck's MSG 2.1 in place of 2.4. tests/unit/test_nats_parser.py feeds both any stream
of operations, cut anywhere, and compares what each does.
"""

from __future__ import annotations

from nats.protocol.parser import AWAITING_CONTROL_LINE
from nats.protocol.parser import Parser as NatsParser

_CRLF = b"\r\n"
_MESSAGE_OPS = (b"HMSG ", b"MSG ")


class Parser(NatsParser):
    async def parse(self, data: bytes = b"") -> None:
        buf = self.buf
        buf.extend(data)
        while self.state == AWAITING_CONTROL_LINE and buf.startswith(_MESSAGE_OPS):
            end = buf.find(_CRLF)
            if end < 0:
                return  # the control line is not all read: nats-py would wait too
            line = bytes(buf[:end])
            words = line.split()
            if words[0] == b"HMSG":
                header_size = int(words[-2]) if len(words) in (5, 6) and words[-2].isdigit() else -1
                has_reply = len(words) == 6
            elif words[0] == b"MSG":
                header_size = 0 if len(words) in (4, 5) else -1
                has_reply = len(words) == 5
            else:
                break
            if header_size < 0 or not (words[2].isdigit() and words[-1].isdigit()) or b" ".join(words) != line:
                break  # not a message's line as the server writes it: nats-py's expressions decide
            size = int(words[-1])
            start = end + 2
            if len(buf) < start + size + 2:
                return  # the payload is not all read: the line is read again with the rest
            reply = words[3] if has_reply else b""
            if header_size > 0:
                headers: bytes | None = bytes(buf[start:start + header_size])
                payload = bytes(buf[start + header_size:start + size])
            else:
                headers, payload = None, bytes(buf[start:start + size])
            del buf[:start + size + 2]
            await self.nc._process_msg(int(words[2]), words[1], reply, payload, headers)
        if buf:
            await super().parse()
