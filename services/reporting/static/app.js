// The county dashboard: figures from /api/v1 with the user's token, Chinese by default.
"use strict";

const TEXT = {
  zh: {
    title: "留守儿童关爱保护统计", token: "访问令牌", open: "打开", byPlace: "各地走访覆盖率", trend: "月度趋势",
    places: "下级地区", place: "地区", children: "留守儿童", compliance: "走访覆盖率", noContact: "30天以上未联系",
    archiveRate: "建档完整率", unguarded: "无人监护", lang: "English", all: "全部",
    total: "留守儿童数", rate: "建档完整率", agreements_in_force: "委托监护协议在效", expiring_30_days: "30天内到期协议",
    unguarded_now: "无人监护", records: "本季度走访", no_contact_30_days: "30天以上未联系", person_times: "关爱活动人次",
    still_out: "仍未返校", returned: "劝返复学", registered: "本季度新登记", visits: "走访", missed_windows: "未达标周期",
    dropouts_registered: "辍学登记", dropouts_returned: "劝返复学", school: "学校",
  },
  en: {
    title: "Left-behind children: care and protection", token: "Access token", open: "Open", byPlace: "Visit coverage by place",
    trend: "Trends by month", places: "Places below", place: "Place", children: "Children", compliance: "Visit coverage",
    noContact: "No contact 30+ days", archiveRate: "Archive completeness", unguarded: "No guardian", lang: "中文", all: "All",
    total: "Left-behind children", rate: "Archive completeness", agreements_in_force: "Agreements in force",
    expiring_30_days: "Expiring in 30 days", unguarded_now: "No guardian now", records: "Visits this quarter",
    no_contact_30_days: "No contact 30+ days", person_times: "Activity person-times", still_out: "Still out of school",
    returned: "Dropouts returned", registered: "Registered this quarter", visits: "Visits", missed_windows: "Missed windows",
    dropouts_registered: "Dropouts registered", dropouts_returned: "Dropouts returned", school: "School",
  },
};
const HEADLINES = [
  ["children", "total"], ["archives", "rate"], ["guardianship", "agreements_in_force"], ["guardianship", "expiring_30_days"],
  ["guardianship", "unguarded_now"], ["visits", "compliance"], ["visits", "records"], ["visits", "no_contact_30_days"],
  ["activities", "person_times"], ["dropouts", "still_out"], ["dropouts", "returned"], ["children", "registered"],
];
const params = new URLSearchParams(location.search);
const state = { lang: params.get("lang") || localStorage.getItem("shouhu.lang") || "zh", token: null, root: "", region: "", data: null };
const $ = (sel) => document.querySelector(sel);
const t = (key) => TEXT[state.lang][key] || key;
const pct = (v) => (v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%");
const level = (v) => (v === null || v === undefined ? "none" : v >= 0.9 ? "good" : v >= 0.6 ? "fair" : "poor");
let placesChart, trendChart;

function claims(token) {
  try { return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))); } catch { return {}; }
}

async function api(path, query) {
  const r = await fetch(`/api/v1/${path}?${new URLSearchParams(query)}`, { headers: { Authorization: `Bearer ${state.token}` } });
  const body = await r.json();
  if (!r.ok) throw new Error((body.detail && (state.lang === "zh" ? body.detail.message_zh : body.detail.message_en)) || r.status);
  return body;
}

function translate() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  $("#lang").textContent = t("lang");
  if (state.data) render();
}

async function show(region) {
  state.region = region;
  const [figures, places, trend] = await Promise.all([
    api("figures", { region }), api("figures/places", { region }), api("figures/trend", { region, months: 12 }),
  ]);
  state.data = { figures, places, trend };
  render();
}

function render() {
  const { figures, places, trend } = state.data;
  $("#place-title").textContent = state.region;
  const crumbs = $("#crumbs");
  crumbs.replaceChildren();
  for (const n of [2, 4, 6, 9, 12].filter((n) => n >= state.root.length && n <= state.region.length)) {
    const a = document.createElement("a");
    a.textContent = state.region.slice(0, n);
    a.dataset.crumb = state.region.slice(0, n);
    a.onclick = () => show(a.dataset.crumb).catch(fail);
    crumbs.append(a, " › ");
  }
  $("#headlines").replaceChildren(...HEADLINES.map(([section, key]) => {
    const card = document.createElement("div");
    const value = figures[section][key];
    card.className = "card";
    card.innerHTML = `<div class="value" data-figure="${section}.${key}"></div><div class="label"></div>`;
    card.querySelector(".value").textContent = typeof value === "number" && !Number.isInteger(value) || key === "rate" || key === "compliance" ? pct(value) : value;
    card.querySelector(".label").textContent = key === "compliance" ? t("compliance") : t(key);
    return card;
  }));
  $("#places tbody").replaceChildren(...places.map((p) => {
    const tr = document.createElement("tr");
    tr.className = `${p.kind} ${level(p.compliance)}`;
    tr.dataset.place = p.place;
    const name = p.kind === "school" ? `${t("school")} ${p.place.split(".school.")[1]}` : p.place;
    for (const v of [name, p.children, pct(p.compliance), p.no_contact_30_days ?? "—", pct(p.archive_rate), p.unguarded]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    if (p.kind === "division") tr.onclick = () => show(p.place).catch(fail);
    return tr;
  }));
  const divisions = places.filter((p) => p.kind === "division");
  placesChart.setOption({
    animation: false, tooltip: {}, grid: { left: 40, right: 10, top: 10, bottom: 50 },
    xAxis: { type: "category", data: divisions.map((p) => p.place), axisLabel: { rotate: 30 } },
    yAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
    series: [{ type: "bar", name: t("compliance"), data: divisions.map((p) => ({
      value: p.compliance === null ? 0 : +(p.compliance * 100).toFixed(1),
      itemStyle: { color: { good: "#43a047", fair: "#fbc02d", poor: "#e53935", none: "#bdbdbd" }[level(p.compliance)] },
    })) }],
  }, true);
  placesChart.off("click");
  placesChart.on("click", (e) => show(divisions[e.dataIndex].place).catch(fail));
  const lines = ["registered", "visits", "person_times", "missed_windows", "dropouts_registered", "dropouts_returned"];
  trendChart.setOption({
    animation: false, tooltip: { trigger: "axis" }, legend: { bottom: 0, data: lines.map(t) }, grid: { left: 40, right: 10, top: 10, bottom: 60 },
    xAxis: { type: "category", data: trend.months }, yAxis: { type: "value" },
    series: lines.map((k) => ({ type: "line", name: t(k), data: trend[k] })),
  }, true);
}

function fail(err) {
  const el = $("#error");
  el.textContent = err.message || String(err);
  el.hidden = false;
}

async function start(token) {
  state.token = token;
  localStorage.setItem("shouhu.token", token);
  state.root = claims(token).region || "";
  $("#auth").hidden = true;
  $("#board").hidden = false;
  placesChart = placesChart || echarts.init($("#places-chart"));
  trendChart = trendChart || echarts.init($("#trend-chart"));
  addEventListener("resize", () => { placesChart.resize(); trendChart.resize(); });
  await show(params.get("region") || state.root);
}

$("#lang").onclick = () => {
  state.lang = state.lang === "zh" ? "en" : "zh";
  localStorage.setItem("shouhu.lang", state.lang);
  translate();
};
$("#auth").onsubmit = (e) => { e.preventDefault(); start($("#token-input").value.trim()).catch(fail); };
translate();
const given = params.get("token") || localStorage.getItem("shouhu.token");
if (given) start(given).catch(fail); else $("#auth").hidden = false;
