"""The written report (书面报告) of a failed persuasion: printable HTML in Chinese, with only the facts
the dropout policy lets its receivers see (templates/written_report.html; edit without code)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.visits.domain.referrals import Referral, ReferralPolicy
from shared.clock import today_local

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"), autoescape=select_autoescape(["html"])
)
AGENCY_NAMES = {
    "education_bureau": "县教育局", "township_government": "乡镇人民政府", "civil_affairs": "县民政局",
    "public_security": "县公安局", "health": "县卫生健康委", "leading_group_office": "县留守儿童工作领导小组办公室",
}
OUTCOMES = {"returned": "已返校", "refused": "拒绝返校", "unreachable": "联系不上"}
CAUSES = {"study_difficulty": "学习困难", "family_hardship": "家庭困难", "work": "外出打工", "illness": "疾病", "other": "其他"}


def render_report(r: Referral, policy: ReferralPolicy, facts: dict[str, Any], *, name: str | None, attempts: list[dict]) -> str:
    return _ENV.get_template("written_report.html").render(
        case_id=r.id, today=today_local().isoformat(), policy_name=policy.name_zh, name=name,
        facts=policy.disclosed(facts), village_code=r.village_code, opened_on=r.opened_on, attempts=attempts,
        show_view="guardian_view" in policy.disclose, outcomes=OUTCOMES, causes=CAUSES,
        report_to=[AGENCY_NAMES[k] for k in policy.report_to], inform=[AGENCY_NAMES[k] for k in policy.inform],
        outcome_days=policy.outcome_days,
    )
