"""The real Asterisk captures as parsed messages, for the reducer and listener tests."""

from functools import cache

from pbxweb.ami.protocol import Parser

from .conftest import ASTERISK_FACTS

AMI_DIR = ASTERISK_FACTS / "ami"


@cache
def messages(capture: str, directory: str = "ami") -> tuple:
    parser = Parser()
    return tuple(parser.feed((ASTERISK_FACTS / directory / capture).read_bytes()))


def events(capture: str) -> list:
    """The unsolicited events of a capture (what a listener receives), in order."""
    return [m for m in messages(capture) if m.event and m.action_id is None]


def answer(capture: str, action_id: str) -> list:
    """The list events a capture's action got back."""
    return [m for m in messages(capture) if m.action_id == action_id and m.event and not m.event.endswith("Complete")]
