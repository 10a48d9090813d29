import re
import time

import pytest
from jinja2.exceptions import SecurityError, UndefinedError
from pydantic import ValidationError

from services.notifications.acl import agency_user
from services.notifications.adapters.signing import SIGNATURE_HEADER, signed_headers, verify
from services.notifications.config import Agency, NotificationsConfig
from services.notifications.domain.templates import TemplateError, Templates
from shared.contracts.notifications_v1 import Channel, MessageKind, MessageRequested

CONTEXT = {"data": {}, "child_name": "李小花", "region_code": "410523100201", "agency_name": "汤阴县教育局", "urgent": False}


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates.load(NotificationsConfig().templates_file)


@pytest.mark.parametrize("kind", list(MessageKind))
@pytest.mark.parametrize("channel", [Channel.sms, Channel.email])
def test_every_kind_renders_chinese_first_then_english(templates, kind, channel):
    rendered = templates.render(kind, channel, CONTEXT)
    zh, en = rendered.text.split("\n\n", 1)
    assert re.search(r"[\u4e00-\u9fff]{4}", zh) and not re.search(r"[A-Za-z]{4}", zh)
    assert re.search(r"[A-Za-z]{4} [A-Za-z]{2}", en)
    assert "李小花" in zh and " / " in rendered.subject


def test_sms_gets_the_short_text_and_email_the_long_one(templates):
    sms = templates.render(MessageKind.dropout_report, Channel.sms, CONTEXT).text
    mail = templates.render(MessageKind.dropout_report, Channel.email, CONTEXT).text
    assert len(sms) < len(mail) and sms.startswith("【守护】") and mail.startswith("汤阴县教育局：")


def test_template_data_fills_in_and_missing_facts_fall_back(templates):
    text = templates.render(MessageKind.dropout_report, Channel.email, {**CONTEXT, "data": {"school_days": 12}}).text
    assert "旷课12天" in text and "未注明" in text


def _source(**override) -> dict:
    base = {k: {p: {"zh": "x", "en": "x"} for p in ("subject", "short", "long")} for k in MessageKind}
    base["absence_notice"]["short"]["zh"] = override.get("template", "x")
    return base


def test_the_sandbox_keeps_templates_out_of_python():
    with pytest.raises(SecurityError):
        Templates(_source(template="{{ data.__class__.__mro__[1].__subclasses__() }}")).render(
            MessageKind.absence_notice, Channel.sms, CONTEXT)


def test_a_misspelt_variable_fails_instead_of_printing_blank():
    with pytest.raises(UndefinedError):
        Templates(_source(template="{{ chlid_name }}")).render(MessageKind.absence_notice, Channel.sms, CONTEXT)


def test_a_missing_or_broken_template_is_refused_at_start():
    source = _source()
    del source["visit_reminder"]["long"]["en"]
    with pytest.raises(TemplateError, match="visit_reminder.long.en is missing"):
        Templates(source)
    with pytest.raises(TemplateError, match="absence_notice.short.zh"):
        Templates(_source(template="{{ unclosed"))


def test_webhook_signatures_verify_and_catch_tampering_and_replays():
    body = b'{"message_id": "m-1"}'
    headers = signed_headers("s3cret", body, "m-1")
    assert verify("s3cret", headers, body)
    assert verify("s3cret", {k.lower(): v for k, v in headers.items()}, body)  # header case does not matter
    assert not verify("s3cret", headers, body + b" ")
    assert not verify("other", headers, body)
    assert not verify("s3cret", {**headers, SIGNATURE_HEADER: "v1=00"}, body)
    assert not verify("s3cret", signed_headers("s3cret", body, "m-1", now=time.time() - 3600), body)
    assert not verify("s3cret", {}, body)


def test_a_request_names_recipients_completely():
    base = {"request_id": "7f2c6a3e-1c1b-4c1a-9a43-0d7d3f1f8e11", "kind": "dropout_report", "region_code": "410523100201"}
    with pytest.raises(ValidationError, match="role agency needs an agency kind"):
        MessageRequested(**base, recipients=[{"role": "agency"}])
    with pytest.raises(ValidationError, match="guardian or parents need a child_id"):
        MessageRequested(**base, recipients=[{"role": "guardian"}])
    with pytest.raises(ValidationError):
        MessageRequested(**base, recipients=[])
    with pytest.raises(ValidationError):  # template data is flat facts, not nested personal records
        MessageRequested(**base, recipients=[{"role": "user", "user_id": "u"}], data={"guardian": {"name": "x"}})


def test_the_acl_user_names_only_its_own_streams():
    agency = Agency(code="edu-410523", kind="education_bureau", region="410523", name="x", channels=["agency_stream"])
    user = agency_user(agency, "pw", namespace="demo.")
    assert user.name == "agency-edu-410523"
    keys = [r for r in user.line().replace("(", " ").replace(")", " ").split() if "~" in r]
    assert keys == ["~demo.to-agency.edu-410523", "%W~demo.from-agency.edu-410523"]
    assert "-@all" in user.rules and ">pw" not in user.line()
