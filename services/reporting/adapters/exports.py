"""The quarterly report as files: an xlsx with Chinese headers, one sheet per section in a fixed
layout, and the work brief (工作简报) as a printable HTML page."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from openpyxl import Workbook
from openpyxl.styles import Font

from shared.spreadsheets import neutralise

# Chinese names of the values that figures are broken down by (the terms users and forms use).
ZH = {
    "both_parents_out": "父母双方外出务工", "one_out_other_incapable": "一方外出另一方无监护能力",
    "grandparent": "祖父母/外祖父母", "parent": "父/母", "relative": "亲戚", "sibling": "兄姐", "other": "其他",
    "none": "无监护人", "male": "男", "female": "女",
    "no_guardian": "无人监护", "dropout": "失学辍学", "no_hukou": "无户籍", "orphan": "孤儿",
    "de_facto_unsupported": "事实无人抚养", "prisoner_child": "服刑在押人员子女", "disabled": "残疾", "street_child": "流浪",
    "hiv_affected": "受艾滋病影响", "drug_family": "吸毒家庭子女", "violence_victim": "受暴力侵害", "dibao_family": "低保家庭",
    "home_visit": "家访/走访", "talk": "谈心", "phone": "电话", "letter": "书信", "school_contact": "与班主任联系",
    "guardian_contact": "与监护人联系", "parent_contact": "亲情电话", "festival": "共度节日", "persuasion_visit": "劝返走访",
}
SECTIONS = (
    ("儿童", "children", (("留守儿童数", "total"), ("儿童总数", "population"), ("留守儿童占比", "share"), ("本期新登记", "registered")),
     (("留守类型", "by_type"), ("监护类型", "by_guardian"), ("困境类别", "by_risk"), ("性别", "by_gender"))),
    ("建档", "archives", (("档案完整数", "complete"), ("建档完整率", "rate")), ()),
    ("监护", "guardianship", (("协议在效", "agreements_in_force"), ("30天内到期", "expiring_30_days"), ("本期签订", "signed"),
                            ("本期续签", "renewed"), ("本期到期", "expired"), ("本期解除", "revoked"),
                            ("无人监护", "unguarded_now"), ("最早无人监护日期", "unguarded_since"),
                            ("最长无人监护天数", "unguarded_longest_days")), ()),
    ("走访", "visits", (("走访记录数", "records"), ("结对儿童", "paired_children"), ("近30天已联系", "paired_contacted_30_days"),
                      ("走访覆盖率", "compliance"), ("30天以上未联系", "no_contact_30_days"), ("未达标周期", "missed_windows")),
     (("走访方式", "by_kind"),)),
    ("活动", "activities", (("活动次数", "activities"), ("参与人次", "person_times"), ("参与儿童", "children_reached")), ()),
    ("辍学", "dropouts", (("辍学登记", "registered"), ("劝返复学", "returned"), ("仍未返校", "still_out"),
                        ("返校天数中位数", "median_days_to_return")), ()),
)
PLACE_COLUMNS = (("地区/学校", "place"), ("留守儿童数", "children"), ("建档完整率", "archive_rate"), ("结对儿童", "paired_children"),
                 ("走访覆盖率", "compliance"), ("30天以上未联系", "no_contact_30_days"), ("无人监护", "unguarded"),
                 ("仍未返校", "out_of_school"))
_BOLD = Font(bold=True)
_templates = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
                         autoescape=select_autoescape())


def _cell(value):
    return "" if value is None else value if isinstance(value, (int, float)) else neutralise(str(value))


def to_xlsx(report: dict) -> bytes:
    wb = Workbook()
    overview = wb.active
    overview.title = "总览"
    overview.append([f"季度报表 {report['quarter']}", f"地区 {report['region']}"])
    overview.append(["指标", "本季度", f"上季度 {report['previous_quarter']}", "变化"])
    for h in report["headlines"]:
        overview.append([h["zh"], _cell(h["value"]), _cell(h["previous"]), _cell(h["change"])])
    for title, section, rows, breakdowns in SECTIONS:
        sheet = wb.create_sheet(title)
        sheet.append(["指标", "数值"])
        data = report["figures"][section]
        for zh, key in rows:
            sheet.append([zh, _cell(data[key])])
        for zh, key in breakdowns:
            sheet.append([])
            sheet.append([zh, "人数"])
            for k, v in data[key].items():
                sheet.append([_cell(ZH.get(k, k)), v])
        if section == "visits":
            sheet.append([])
            sheet.append(["走访规则", "未达标周期", "应走访次数", "已走访次数"])
            for rule, m in data["missed_by_rule"].items():
                sheet.append([_cell(rule), m.get("windows", 0), m.get("required", 0), m.get("done", 0)])
    places = wb.create_sheet("下级地区")
    places.append([zh for zh, _ in PLACE_COLUMNS])
    for p in report["places"]:
        places.append([_cell(p[key]) for _, key in PLACE_COLUMNS])
    for sheet in wb.worksheets:
        sheet.column_dimensions["A"].width = 24
        for cell in sheet[2 if sheet.title == "总览" else 1]:
            cell.font = _BOLD
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def to_html(report: dict) -> str:
    """工作简报: a printable page (the browser's print makes the PDF)."""
    return _templates.get_template("brief.html").render(report=report, ZH=ZH)
