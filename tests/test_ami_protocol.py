"""The AMI parser over every real capture, whole, byte by byte and in random chunks; the encoder refuses
injection."""

import random

import pytest

from pbxweb.ami.protocol import Parser, UnsafeField, encode_action

from .conftest import ASTERISK_FACTS

CAPTURES = sorted(ASTERISK_FACTS.glob("ami*/*.ami"))


def parse_in_chunks(data: bytes, sizes) -> tuple[str, list]:
    parser = Parser()
    messages = []
    position = 0
    for size in sizes:
        messages += parser.feed(data[position : position + size])
        position += size
        if position >= len(data):
            break
    messages += parser.feed(data[position:])
    return parser.banner, messages


def expected_messages(data: bytes) -> list[list[tuple[str, str]]]:
    _, _, body = data.partition(b"\r\n")
    blocks = [b for b in body.split(b"\r\n\r\n") if b]
    return [[tuple(line.split(": ", 1)) for line in b.decode().split("\r\n") if ": " in line] for b in blocks]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_capture_parses_the_same_whole_byte_by_byte_and_in_random_chunks(capture):
    data = capture.read_bytes()
    banner, whole = parse_in_chunks(data, [len(data)])
    assert banner == "Asterisk Call Manager/11.0.0"
    assert [m.headers for m in whole] == expected_messages(data)
    _, by_byte = parse_in_chunks(data, [1] * len(data))
    assert [m.headers for m in by_byte] == [m.headers for m in whole]
    rng = random.Random(capture.name)
    _, chunked = parse_in_chunks(data, [rng.randint(1, 700) for _ in range(len(data))])
    assert [m.headers for m in chunked] == [m.headers for m in whole]


def test_a_utf8_character_split_across_reads_survives():
    data = "Asterisk Call Manager/11.0.0\r\nEvent: Newchannel\r\nCallerIDName: Zoë Ünal\r\n\r\n".encode()
    split = data.index("ë".encode()) + 1
    parser = Parser()
    messages = parser.feed(data[:split]) + parser.feed(data[split:])
    assert messages[0]["CallerIDName"] == "Zoë Ünal"


def test_repeated_keys_are_all_kept():
    parser = Parser()
    parser.feed(b"Asterisk Call Manager/11.0.0\r\n")
    (message,) = parser.feed(b"Event: VarSet\r\nChanVariable: a=1\r\nChanVariable: b=2\r\n\r\n")
    assert message.getall("ChanVariable") == ["a=1", "b=2"]


def test_command_output_lines_are_kept_in_order():
    capture = (ASTERISK_FACTS / "ami" / "actions.ami").read_bytes()
    _, messages = parse_in_chunks(capture, [len(capture)])
    version = next(m for m in messages if m.action_id == "command-17")
    assert any("Asterisk 22.10.1" in line for line in version.getall("Output"))


@pytest.mark.parametrize("value", ["1001\r\nAction: Originate", "x\ny", "x\rY"])
def test_a_line_break_in_any_field_is_refused_before_it_reaches_the_socket(value):
    with pytest.raises(UnsafeField):
        encode_action("Redirect", {"Channel": value})


def test_actions_are_encoded_as_asterisk_reads_them():
    assert encode_action("QueuePause", {"ActionID": "a1", "Interface": "PJSIP/1002", "Paused": "true"}) == (
        b"Action: QueuePause\r\nActionID: a1\r\nInterface: PJSIP/1002\r\nPaused: true\r\n\r\n"
    )


def test_the_old_response_follows_form_keeps_its_output_lines():
    parser = Parser()
    parser.feed(b"Asterisk Call Manager/1.1\r\n")
    (message,) = parser.feed(b"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\n"
                             b"Asterisk 13.38.3 built by root\r\n--END COMMAND--\r\n\r\n")
    assert message.response == "Follows" and message.action_id == "c1"
    assert message.lines == ["Asterisk 13.38.3 built by root", "--END COMMAND--"]
