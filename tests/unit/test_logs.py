import json
import logging

from shared.logs import configure_logging, log_fields, redact


def test_redact_masks_id_numbers_and_phones():
    text = "id 11010519491231002X phone 13800138000 order 12345"
    assert redact(text) == "id [id-number] phone [phone] order 12345"


def test_json_lines_carry_fields_and_no_personal_numbers(capsys):
    configure_logging("json", "INFO")
    logging.getLogger("t").info("guardian 13900139000 updated", extra=log_fields(child="c-1"))
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["msg"] == "guardian [phone] updated" and line["child"] == "c-1" and line["level"] == "info"
