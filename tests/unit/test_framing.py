from hypothesis import assume, given, settings
from hypothesis import strategies as st

from evd import framing
from evd.framing import ACK, ETX, NACK, STX, Ack, BadFrame, Decoder, Frame, Nack

# Any text without the two framing bytes is valid DATA.
DATA = st.text(alphabet=st.characters(blacklist_characters="\x02\x03", blacklist_categories=("Cs",)), max_size=300).filter(
    lambda s: len(s.encode()) <= framing.MAX_DATA
)


def feed_in_pieces(decoder, stream, cuts):
    events, start = [], 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        events += decoder.feed(stream[start:cut])
        start = cut
    return events


@given(st.lists(DATA, max_size=5), st.lists(st.integers(0, 2000), max_size=10))
def test_any_data_round_trips_whatever_the_split(datas, cuts):
    stream = b"".join(framing.encode_frame(d) for d in datas)
    events = feed_in_pieces(Decoder(), stream, [c for c in cuts if c <= len(stream)])
    assert events == [Frame(d) for d in datas]


@settings(max_examples=500)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=20))
def test_any_bytes_never_raise_and_never_yield_a_frame_with_a_bad_lrc(stream, cuts):
    decoder = Decoder(max_data=64)
    events = feed_in_pieces(decoder, stream, [c for c in cuts if c <= len(stream)])
    for event in events:
        assert isinstance(event, (Frame, BadFrame, Ack, Nack))
        if isinstance(event, Frame):
            raw = event.data.encode()
            # A yielded frame really was STX raw ETX LRC in the stream, with a correct LRC.
            assert bytes((STX, *raw, ETX, framing.lrc(raw))) in stream
            assert len(raw) <= 64


@given(DATA, st.integers(0, 255))
def test_a_corrupted_lrc_is_a_bad_frame(data, wrong):
    frame = bytearray(framing.encode_frame(data))
    if wrong == frame[-1]:
        return
    frame[-1] = wrong
    assert Decoder().feed(bytes(frame)) == [BadFrame("bad LRC")]


def test_ack_nack_garbage_and_resync():
    decoder = Decoder()
    events = decoder.feed(b"noise" + bytes((ACK, NACK)) + b"\x02half" + framing.encode_frame("OK#1"))
    assert events == [Ack(), Nack(), BadFrame("frame cut short by a new STX"), Frame("OK#1")]
    assert decoder.garbage == 5


def test_oversized_frame_is_rejected_once_then_the_next_one_is_read():
    decoder = Decoder(max_data=10)
    stream = bytes((STX,)) + b"x" * 50 + bytes((ETX, STX)) + framing.encode_frame("A#b")
    # The oversized frame's LRC byte happens to be STX here: it must not open a frame.
    assert decoder.feed(stream) == [BadFrame("frame longer than 10 bytes"), Frame("A#b")]


def test_invalid_utf8_is_a_bad_frame():
    raw = b"\xff\xfe"
    assert Decoder().feed(bytes((STX, *raw, ETX, framing.lrc(raw)))) == [BadFrame("data is not UTF-8")]


def test_encode_refuses_framing_bytes_and_oversize():
    for bad in ("a\x02b", "a\x03b", "x" * (framing.MAX_DATA + 1)):
        try:
            framing.encode_frame(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad[:10]!r} was encoded")


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40), max_size=6))
def test_any_fields_round_trip_through_a_frame(fields):
    data = framing.pack("REG", *fields)
    assume(len(data.encode()) <= framing.MAX_DATA)
    assert Decoder().feed(framing.encode_frame(data)) == [Frame(data)]
    assert framing.unpack(data) == ("REG", fields)


def test_bad_escape_is_an_error():
    try:
        framing.unpack("REG#%zz")
    except ValueError:
        return
    raise AssertionError("accepted a bad escape")
