"""Writes of hundreds of realtime rows at once (a CSV import, a large group) work in every process: the
CLI's, and gunicorn's gevent worker, whose psycogreen wait callback makes psycopg2 refuse COPY. The page
flows are driven through gunicorn as deployed, by a real browser."""

import json
import urllib.request

import pytest
from psycogreen.gevent import patch_psycopg
from psycopg2.extensions import set_wait_callback

from pbxweb.auth.service import create_token
from pbxweb.extensions import csv_io

from .conftest import sign_in


@pytest.fixture
def green_psycopg():
    """This process's psycopg2 as gunicorn's worker has it: every query waits through psycogreen."""
    patch_psycopg()
    try:
        yield
    finally:
        set_wait_callback(None)


def test_hundreds_of_realtime_rows_are_written_exactly_on_a_green_connection(app, green_psycopg, rows):
    # Passwords with every character an array or CSV encoding has to quote.
    lines = ["number,name,password"] + [f'{3000 + i},"O\'Neil, Jr {i}","Pw{{x}}\\"",{i:08d}Ab"' for i in range(250)]
    result = csv_io.import_extensions("\n".join(lines).encode(), dry_run=False)
    assert result.errors == [] and result.created == 250
    auths = rows("ps_auths")
    assert len(auths) == 250 and len(rows("ps_endpoints")) == 250 and len(rows("ps_aors")) == 250
    assert auths[0] == {**auths[0], "id": "3000", "username": "3000", "password": 'Pw{x}\\",00000000Ab'}
    assert rows("ps_endpoints")[1]["callerid"] == "\"O'Neil, Jr 1\" <3001>"


def test_a_thousand_row_csv_imports_through_the_page_under_gunicorn_with_its_passwords(server, browser, rows,
                                                                                        tmp_path):
    csv_file = tmp_path / "phones.csv"
    csv_file.write_text("number,name\n" + "".join(f"{4000 + i},Phone {i}\n" for i in range(1000)))
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        sign_in(page, server, "alice")
        page.goto(f"{server}/extensions/import")
        page.set_input_files("input[name=file]", str(csv_file))
        page.click("button:has-text('Preview')")
        page.click("button:has-text('Import 1000 extensions')")
        page.wait_for_selector("text=Imported 1000 extensions")
        with page.expect_download() as download:
            page.click("button:has-text('Download the 1000 SIP passwords')")
        lines = open(download.value.path()).read().splitlines()
    finally:
        context.close()
    assert len([r for r in rows("ps_endpoints") if r["id"].startswith("4")]) == 1000
    assert len(rows("ps_auths")) == 1003 and len(rows("ps_aors")) == 1003
    assert lines[0] == "number,name,password" and lines[1] == f"4000,Phone 0,{rows('ps_auths', id='4000')[0]['password']}"
    assert len(lines) == 1001


def test_a_group_of_220_members_is_saved_through_the_api_under_gunicorn(server, site, rows):
    lines = ["number,name"] + [f"{5000 + i},Agent {i}" for i in range(220)]
    assert csv_io.import_extensions("\n".join(lines).encode(), dry_run=False).created == 220
    body = json.dumps({"members": [{"number": str(5000 + i), "penalty": i % 3} for i in range(220)]}).encode()
    request = urllib.request.Request(
        f"{server}/api/groups/{site['support']}/members", data=body, method="PUT",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {create_token('alice')}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    members = rows("asterisk_queue_members", queue_name=f"extgroup_{site['support']}")
    assert len(members) == 220
    assert {(m["interface"], m["penalty"]) for m in members} >= {("PJSIP/5000", 0), ("PJSIP/5219", 0), ("PJSIP/5001", 1)}
