"""The socket protocol's frames (DESIGN.md §6): ``<STX>DATA<ETX><LRC>``, answered by ACK or NACK.

DATA is UTF-8 text ``OPCODE#field#…``; LRC is the XOR of DATA's bytes and ETX. Fields are
percent-escaped (``%``, ``#`` and control characters), so any text travels in a field.
:class:`Decoder` is a pure state machine: it never raises on input, whatever the bytes.
"""

import attrs

STX, ETX, ACK, NACK = 0x02, 0x03, 0x06, 0x15
MAX_DATA = 4096  # bytes of DATA in one frame
SEPARATOR = "#"


def lrc(data):
    value = ETX
    for byte in data:
        value ^= byte
    return value


def encode_frame(data):
    """One frame carrying ``data`` (str or bytes without STX/ETX, at most MAX_DATA bytes)."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if STX in raw or ETX in raw:
        raise ValueError("frame data must not contain STX or ETX")
    if len(raw) > MAX_DATA:
        raise ValueError(f"frame data is {len(raw)} bytes; at most {MAX_DATA}")
    return bytes((STX,)) + raw + bytes((ETX, lrc(raw)))


ACK_BYTES = bytes((ACK,))
NACK_BYTES = bytes((NACK,))


@attrs.frozen
class Frame:
    data: str


@attrs.frozen
class BadFrame:
    """A frame that must be NACKed: bad LRC, too long, cut short, or not UTF-8."""

    reason: str


@attrs.frozen
class Ack:
    pass


@attrs.frozen
class Nack:
    pass


class Decoder:
    """Bytes in, events out (Frame, BadFrame, Ack, Nack); bytes outside frames count as garbage."""

    def __init__(self, max_data=MAX_DATA):
        self.max_data = max_data
        self.garbage = 0
        self._buffer = bytearray()
        self._state = "idle"  # idle | data | lrc | skip (an oversized frame's rest)

    def feed(self, chunk):
        events = []
        for byte in chunk:
            self._step(byte, events)
        return events

    def _step(self, byte, events):
        state = self._state
        if state == "lrc":
            self._state = "idle"
            data = bytes(self._buffer)
            self._buffer.clear()
            if byte != lrc(data):
                events.append(BadFrame("bad LRC"))
                return
            try:
                events.append(Frame(data.decode("utf-8")))
            except UnicodeDecodeError:
                events.append(BadFrame("data is not UTF-8"))
            return
        if state == "skip_lrc":
            self._state = "idle"  # the oversized frame's LRC, whatever its value: already answered
            return
        if byte == STX:
            if state in ("data", "skip"):
                events.append(BadFrame("frame cut short by a new STX"))
            self._buffer.clear()
            self._state = "data"
        elif state == "data":
            if byte == ETX:
                self._state = "lrc"
            elif len(self._buffer) >= self.max_data:
                self._buffer.clear()
                self._state = "skip"
                events.append(BadFrame(f"frame longer than {self.max_data} bytes"))
            else:
                self._buffer.append(byte)
        elif state == "skip":
            if byte == ETX:
                self._state = "skip_lrc"
        elif byte == ACK:
            events.append(Ack())
        elif byte == NACK:
            events.append(Nack())
        else:
            self.garbage += 1


# -- fields -----------------------------------------------------------------------------

_ESCAPE = {ord("%"): "%25", ord("#"): "%23", **{c: f"%{c:02X}" for c in (*range(0x20), 0x7F)}}


def pack(opcode, *fields):
    """``OPCODE#field#…`` with every field escaped; None travels as an empty field."""
    if not opcode or not opcode.isalnum() or not opcode.isascii():
        raise ValueError(f"bad opcode {opcode!r}")
    return SEPARATOR.join([opcode, *("" if f is None else str(f).translate(_ESCAPE) for f in fields)])


def unpack(data):
    """``OPCODE#field#…`` to (opcode, [fields]); raises ValueError on a malformed escape."""
    opcode, *fields = data.split(SEPARATOR)
    return opcode, [_unescape(f) for f in fields]


def _unescape(text):
    if "%" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        if text[i] == "%":
            code = text[i + 1 : i + 3]
            if len(code) != 2 or not all(c in "0123456789abcdefABCDEF" for c in code):
                raise ValueError(f"bad escape in field {text!r}")
            out.append(chr(int(code, 16)))
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
