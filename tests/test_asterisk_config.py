"""`pbx asterisk-config`: the rendered files parse, agree with our schema and dialplan, keep secrets out
when unset, and route calls where they should go."""

import re
import stat

import pytest
import sqlalchemy as sa

from pbxweb.asterisk_config import FILES, render

from .asterisk_conf import by_name, extensions_of, parse, pattern_matches

SECRETS = {"AMI_USERNAME": "miniadmin", "AMI_SECRET": "ami-Secret-42", "PBX_ODBC_PASSWORD": "db-Secret-42"}


@pytest.fixture
def settings(app):
    app.config.update(SECRETS)
    return app.config


@pytest.fixture
def conf(settings):
    return {name: by_name(parse(text)) for name, text in render(settings).items()}


def test_every_rendered_file_parses_as_asterisk_config(settings):
    rendered = render(settings)
    assert set(rendered) == set(FILES)
    for name, text in rendered.items():
        assert parse(text), name


def test_every_extconfig_mapping_names_a_table_the_migrations_create(conf, db):
    tables = set(sa.inspect(db.engine).get_table_names())
    mappings = conf["extconfig.conf"]["settings"].entries
    assert len(mappings) >= 10
    for family, target in mappings:
        driver, dsn, table = target.split(",")
        assert driver == "odbc" and dsn == "asterisk"
        assert table in tables, f"{family} → {table}"


def test_sorcery_maps_every_pjsip_object_we_write_to_its_realtime_family(conf):
    sorcery = conf["sorcery.conf"]
    families = {family for family, _ in conf["extconfig.conf"]["settings"].entries}
    wanted = {
        "res_pjsip": {"endpoint": "ps_endpoints", "auth": "ps_auths", "aor": "ps_aors", "contact": "ps_contacts",
                      "domain_alias": "ps_domain_aliases"},
        "res_pjsip_endpoint_identifier_ip": {"identify": "ps_endpoint_id_ips"},
        "res_pjsip_outbound_registration": {"registration": "ps_registrations"},
    }
    for section, objects in wanted.items():
        for object_type, family in objects.items():
            assert f"realtime,{family}" in sorcery[section].getall(object_type), (section, object_type)
            assert family in families


def test_the_anonymous_endpoint_of_pjsip_conf_is_loaded_beside_the_database(conf):
    endpoint_sources = conf["sorcery.conf"]["res_pjsip"].getall("endpoint")
    assert endpoint_sources[0] == "config,pjsip.conf,criteria=type=endpoint"
    assert conf["pjsip.conf"]["anonymous"].get("type") == "endpoint"


def test_every_context_an_endpoint_trunk_or_did_can_reach_exists(conf, settings):
    from pbxweb.models import Trunk

    dialplan = conf["extensions.conf"]
    contexts = {settings["PBX_DEFAULT_CONTEXT"], Trunk.__table__.c.context.default.arg,
                conf["pjsip.conf"]["anonymous"].get("context"), "extgroup-handler", "dial-extension"}
    text = render(settings)["extensions.conf"]
    contexts |= set(re.findall(r"(?:Goto|Gosub)\(([\w-]+),", text))
    for context in contexts:
        assert context in dialplan, context


def test_every_transport_an_endpoint_or_trunk_can_use_is_defined(conf, settings):
    from pbxweb.dids_trunks.service import TRANSPORTS

    pjsip = conf["pjsip.conf"]
    for transport in (*TRANSPORTS, settings["PBX_SIP_TRANSPORT"]):
        section = pjsip[transport]
        assert section.get("type") == "transport" or "transport-template" in section.templates


def test_every_func_odbc_argument_is_escaped(conf):
    text = "\n".join(v for section in conf["func_odbc.conf"].values() for _, v in section.entries)
    arguments = re.findall(r"\$\{ARG\d+\}", text)
    escaped = re.findall(r"\$\{SQL_ESC\(\$\{ARG\d+\}\)\}", text)
    assert arguments and len(arguments) == len(escaped)


def sql_of(conf, function: str, argument: str = "") -> str:
    # What func_odbc sends: SQL_ESC doubles single quotes.
    escaped = argument.replace("'", "''")
    return conf["func_odbc.conf"][function].get("readsql").replace("${SQL_ESC(${ARG1})}", escaped)


def test_every_func_odbc_query_runs_on_our_schema(conf, db):
    with db.engine.connect() as conn:
        for function in conf["func_odbc.conf"]:
            conn.execute(sa.text(sql_of(conf, function, "1")))


def test_did_destination_routes_and_resists_injection(conf, db, api):
    group = api.post("/api/groups", json={"name": "Sales"}).get_json()
    api.post("/api/dids", json={"number": "5550100", "destination_type": "group", "destination": group["id"]})
    with db.engine.connect() as conn:
        lookup = lambda n: conn.execute(sa.text(sql_of(conf, "DID_DESTINATION", n))).scalar()
        assert lookup("5550100") == f"group:{group['id']}"
        assert lookup("5550100'or'1'='1") is None
        assert lookup("0000") is None
        assert conn.execute(sa.text(sql_of(conf, "EXTGROUP_NAME", str(group["id"])))).scalar() == "Sales"
        assert conn.execute(sa.text(sql_of(conf, "EXTGROUP_TIMEOUT", str(group["id"])))).scalar() == 300


def routes(context, exten) -> list[str]:
    return [p for p in extensions_of(context) if pattern_matches(p, exten)]


@pytest.mark.parametrize("dialled,target", [
    ("42", "extension"), ("1001", "extension"), ("999999", "extension"), ("*83", "group"), ("*812", "group"),
    ("00612345678", "outside"), ("0123", "outside"),
])
def test_the_internal_dialplan_sends_each_number_to_one_place(conf, dialled, target):
    matches = routes(conf["extensions.conf"]["from-internal"], dialled)
    assert len(matches) == 1, matches
    first_lines = {v.split(",", 1)[0]: v for k, v in conf["extensions.conf"]["from-internal"].entries if k == "exten"}
    action = first_lines[matches[0]]
    expected = {"extension": "Gosub(dial-extension", "group": "Goto(extgroup-handler", "outside": "ODBC_OUTBOUND_TRUNK"}
    assert expected[target] in action


@pytest.mark.parametrize("group_id", ["1", "3", "12", "4711"])
def test_the_group_handler_takes_any_group_id(conf, group_id):
    assert len(routes(conf["extensions.conf"]["extgroup-handler"], group_id)) == 1


@pytest.mark.parametrize("number", ["42", "1001", "999999"])
def test_a_voicemail_redirect_lands_in_that_extensions_voicemail(conf, number):
    from pbxweb.waiting_calls.service import VOICEMAIL_DIALPLAN

    context = conf["extensions.conf"][VOICEMAIL_DIALPLAN]
    assert len(routes(context, number)) == 1
    assert any("VoiceMail(${EXTEN}@${VOICEMAIL_CONTEXT}" in value for key, value in context.entries if key == "same")


def test_from_external_routes_dids_and_leading_plus(conf):
    context = conf["extensions.conf"]["from-external"]
    assert routes(context, "0612345678") == ["_X."]
    assert routes(context, "+31612345678") == ["_+X."]


def test_manager_conf_gives_the_listener_what_it_needs_and_no_more(conf):
    manager = conf["manager.conf"]
    assert manager["general"].get("bindaddr") == "127.0.0.1"
    assert manager["general"].get("timestampevents") == "yes"
    user = manager["miniadmin"]
    assert user.get("secret") == "ami-Secret-42"
    assert set(user.get("read").split(",")) == set("system,call,agent,user,config,dtmf,reporting,cdr,dialplan".split(","))
    assert set(user.get("write").split(",")) == set("system,call,agent,user,config,command,reporting,originate".split(","))
    filters = [k for k, _ in user.entries if k.startswith("eventfilter")]
    assert "eventfilter(action(exclude),name(VarSet))" in filters
    assert any("RTCP" in f for f in filters)


def test_call_records_are_written_quoted_and_in_utc(conf, db):
    section = conf["cdr_adaptive_odbc.conf"]["mini-pbx"]
    assert section.get("quoted_identifiers") == '"' and section.get("usegmtime") == "yes"
    assert section.get("table") == "cdr"
    assert conf["cdr.conf"]["general"].get("unanswered") == "yes"
    assert conf["cdr_manager.conf"]["general"].get("enabled") == "yes"
    # The statement cdr_adaptive_odbc sends, identifiers quoted as configured.
    columns = [c.name for c in db.metadata.tables["cdr"].columns if c.name != "id"]
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(f"INSERT INTO cdr ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)}) "
                    f"VALUES ({', '.join(':' + c for c in columns)})"),
            {c: None for c in columns} | {"src": "1001", "dst": "1002", "start": "2026-11-27 09:40:00",
                                          "end": "2026-11-27 09:40:03", "disposition": "ANSWERED"},
        )
        assert conn.execute(sa.text("SELECT id, src FROM cdr")).one().src == "1001"


def test_the_command_writes_secret_files_0640_and_prints_them(runner, settings, tmp_path):
    result = runner.invoke(args=["pbx", "asterisk-config", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name, secret in FILES.items():
        path = tmp_path / name
        assert f"wrote {path}" in result.output
        assert stat.S_IMODE(path.stat().st_mode) == (0o640 if secret else 0o644)
        holds_secret = any(s in path.read_text() for s in (SECRETS["AMI_SECRET"], SECRETS["PBX_ODBC_PASSWORD"]))
        assert holds_secret == secret, name


def test_the_command_refuses_to_overwrite_without_force(runner, settings, tmp_path):
    (tmp_path / "manager.conf").write_text("; mine\n")
    result = runner.invoke(args=["pbx", "asterisk-config", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "--force" in result.output
    assert (tmp_path / "manager.conf").read_text() == "; mine\n"
    assert runner.invoke(args=["pbx", "asterisk-config", "--out", str(tmp_path), "--force"]).exit_code == 0
    assert "miniadmin" in (tmp_path / "manager.conf").read_text()


@pytest.mark.parametrize("unset", ["AMI_SECRET", "AMI_USERNAME", "PBX_ODBC_PASSWORD"])
def test_an_unset_secret_fails_naming_the_setting_and_writes_nothing(runner, settings, tmp_path, unset):
    settings[unset] = None
    result = runner.invoke(args=["pbx", "asterisk-config", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and unset in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_secret_that_would_break_the_file_is_refused(runner, settings, tmp_path):
    settings["AMI_SECRET"] = "abc;def"
    result = runner.invoke(args=["pbx", "asterisk-config", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "AMI_SECRET" in result.output


def test_sqlite_is_refused_since_asterisk_reads_postgresql(runner, settings, tmp_path):
    settings["SQLALCHEMY_DATABASE_URI"] = "sqlite:///x.sqlite"
    result = runner.invoke(args=["pbx", "asterisk-config", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "postgresql" in result.output


def test_the_sorcery_cache_setting_adds_memory_caches(settings):
    settings["PBX_SORCERY_CACHE"] = True
    sorcery = by_name(parse(render(settings)["sorcery.conf"]))["res_pjsip"]
    assert sorcery.get("endpoint/cache").startswith("memory_cache,") and "name=ps_endpoints" in sorcery.get("endpoint/cache")


def test_the_queue_log_is_written_to_its_table_in_utc_and_not_to_a_file(conf, db):
    assert ("queue_log", "odbc,asterisk,queue_log") in conf["extconfig.conf"]["settings"].entries
    general = conf["logger.conf"]["general"]
    assert general.get("queue_log") == "yes" and general.get("queue_log_to_file") == "no"
    assert general.get("queue_log_realtime_use_gmt") == "yes"
    # Asterisk's log file stays: realtime lookups that fail say so there.
    assert "messages" in dict(conf["logger.conf"]["logfiles"].entries)
    # The row res_config_odbc stores for a queue event, times as logger.c formats them.
    with db.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO queue_log (time, callid, queuename, agent, event, data1, data2, data3) "
                             "VALUES ('2026-12-01 09:40:00.123456', '1764581999.12', 'extgroup_1', 'NONE', "
                             "'ENTERQUEUE', '', '0612345678', '1')"))
        assert conn.execute(sa.text("SELECT event FROM queue_log")).scalar_one() == "ENTERQUEUE"


def test_mailboxes_come_from_the_voicemail_table_and_mail_goes_through_the_set_command(conf, settings):
    assert ("voicemail", "odbc,asterisk,voicemail") in conf["extconfig.conf"]["settings"].entries
    general = conf["voicemail.conf"]["general"]
    assert general.get("format") == "wav49|gsm|wav" and general.get("attach") == "yes"
    assert general.get("mailcmd") == "/usr/sbin/sendmail -t" and int(general.get("minpassword")) >= 6
    assert conf["voicemail.conf"][settings["PBX_VOICEMAIL_CONTEXT"]].entries == []
    settings.update(PBX_VOICEMAIL_MAILCMD="/tmp/capture-mail --to /tmp/mail", PBX_VOICEMAIL_FROM="pbx@example.com")
    general = by_name(parse(render(settings)["voicemail.conf"]))["general"]
    assert (general.get("mailcmd"), general.get("serveremail")) == ("/tmp/capture-mail --to /tmp/mail", "pbx@example.com")


@pytest.mark.parametrize("name, value", [("PBX_VOICEMAIL_MAILCMD", "/bin/true; rm -rf /"),
                                         ("PBX_VOICEMAIL_FORMAT", "wav49|gsm"), ("PBX_VOICEMAIL_FORMAT", "mp3")])
def test_a_voicemail_setting_asterisk_would_misread_is_refused_naming_it(settings, name, value):
    from pbxweb.asterisk_config import ConfigError

    settings[name] = value
    with pytest.raises(ConfigError, match=name):
        render(settings)
