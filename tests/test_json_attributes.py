"""Attributes that carry JSON (htmx's hx-vals and hx-headers) are built with `|tojson`. A browser decodes the
attribute's entities (`&#34;` back to `"`) before htmx parses the JSON, so text escaped only for HTML inside a
JSON literal can add keys: a caller whose number is `x","number":"00900123456` made the call-back dial that."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from pbxweb.auth.service import create_user

from .test_access import signed_in
from .test_cdr import leg

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
HOSTILE = 'x","number":"00900123456'


class JsonAttributes(HTMLParser):
    """Every hx-vals in a page, its value unescaped as a browser does, then parsed as htmx does."""

    def __init__(self):
        super().__init__()
        self.values = []

    def handle_starttag(self, tag, attrs):
        self.values += [json.loads(value) for name, value in attrs if name == "hx-vals"]


def test_a_hostile_caller_number_in_the_call_log_is_called_back_as_exactly_that_text(app, db, two_groups):
    with db.engine.begin() as conn:
        leg(conn, "200.1", at=-60, src=HOSTILE, dst="1003", channel="PJSIP/provider-00000040", disposition="NO ANSWER",
            duration=20, billsec=0, clid=f'"{HOSTILE}" <{HOSTILE}>')
    user, _ = create_user("receptionist", "manager", "correct horse battery", "1003")
    page = signed_in(app, user).get("/calls")
    assert page.status_code == 200
    parser = JsonAttributes()
    parser.feed(page.get_data(as_text=True))
    assert parser.values == [{"number": HOSTILE}]


def test_every_json_attribute_in_the_templates_is_built_with_tojson():
    htmx_json = re.compile(r"""\b(hx-vals|hx-headers|hx-vars|hx-request)=(['"])(.*?)\2""", re.S)
    # Any attribute holding a JSON literal with template data spliced into it.
    spliced = re.compile(r"""=\s*'\s*\{\s*"[^']*\{\{""")
    wrong = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        for match in htmx_json.finditer(text):
            if not re.fullmatch(r"\{\{.*\|\s*tojson\s*\}\}", match.group(3), re.S):
                wrong.append(f"{path.relative_to(TEMPLATES)}: {match.group(0)}")
        wrong += [f"{path.relative_to(TEMPLATES)}: {m.group(0)}" for m in spliced.finditer(text)]
    assert wrong == []
