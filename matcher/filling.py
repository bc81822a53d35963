"""The demand filling check: what a demand says that a partner needs in order to answer it.

A matchable demand names a concrete technical problem, how it is handled today (and why that
fails), constraints with numbers (temperature, load, purity, cost, volume ...), the target that
means success, a budget and a timeline. :func:`check_demand` looks for each of these six aspects
in Chinese, English and Russian text with plain rules (offline, well under a millisecond per
demand), and marks *vague* a demand that names none of the four that carry substance (problem,
current approach, constraints, target): a demand that says only "费用不要太高" or "有资金" still
gives a partner nothing to work on. For every missing aspect it gives the
question bureau staff would ask (``ASPECTS[key].question``, in English; user interfaces
translate by the aspect key).

Business wishes ("提升竞争力", "增加附加值", "提高管理水平") are deliberately not problems: they
say why an enterprise wants help, not what a partner would work on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ASPECTS", "Aspect", "AspectHit", "FillingCheck", "check_demand"]


@dataclass(frozen=True)
class Aspect:
    key: str
    name: str
    question: str


ASPECTS: dict[str, Aspect] = {a.key: a for a in (
    Aspect("problem", "concrete problem",
           "What exactly goes wrong, on which product or process step, and how does it show?"),
    Aspect("current", "current approach",
           "How do you handle it today (process, material, equipment), and why is that not good enough?"),
    Aspect("constraints", "constraints with numbers",
           "Which conditions must a solution meet, with numbers: temperature, load, purity, size, volume, cost?"),
    Aspect("target", "target",
           "What result would count as success, in numbers (e.g. adhesion grade 1 after 50 cycles at -40 °C)?"),
    Aspect("budget", "budget",
           "What budget or kind of funding do you have in mind (amount, or joint project / purchase)?"),
    Aspect("timeline", "timeline",
           "By when do you need a result, and how long may the work take?"),
)}

_NUM = r"(?:\d+(?:[.,]\d+)?|[一二两三四五六七八九十][一二两三四五六七八九十百千万]*)"
_UNITS = (r"(?:°\s*C|℃|度|K\b|MPa|GPa|kPa|Pa\b|N\b|kN|kg|千克|公斤|克|g\b|mg|μg|ug|吨|t\b|%|％|ppm|ppb|mm|μm|um|nm|cm|"
          r"m\b|米|毫米|微米|厘米|km|公里|h\b|小时|min|分钟|秒|s\b|kW|MW|W\b|V\b|kV|A\b|Hz|rpm|转|L\b|升|毫升|ml|mL|"
          r"m³|m3|㎡|m²|平方米|立方米|立方|方/|亩|级|倍|dB|分贝|CFU|cfu|IU|mg/kg|g/L|mg/L|kWh|度电|"
          r"мм|см|м\b|кг|т\b|ч\b|мин|МПа|град|°|об/мин|кВт|шт)")
_CONSTRAINT = re.compile(rf"(?:[-−–～~至到±]?\s*{_NUM}\s*{_UNITS})|(?:[≥≤><]\s*{_NUM})|(?:-\s*\d+\s*°)", re.I)

_PROBLEM_WORDS = (
    # zh: technical failures and shortfalls
    "剥落", "脱落", "开裂", "裂纹", "裂缝", "腐蚀", "生锈", "锈蚀", "磨损", "拉伤", "泄漏", "渗漏", "漏油", "漂移",
    "变形", "结冰", "覆冰", "堵塞", "结垢", "超标", "残留", "失效", "故障", "停机", "噪声", "噪音", "振动", "异响",
    "缩孔", "缩松", "气孔", "夹杂", "偏析", "不齐", "爆腰", "霉变", "发霉", "变质", "异味", "腥味", "起泡", "粉化",
    "断裂", "疲劳", "不稳定", "波动", "偏差", "误差", "卡滞", "冻胀", "返霜", "结露", "掉漆", "掉皮", "崩刃", "结瘤",
    "污染", "难降解", "难以", "无法", "不能满足", "达不到", "跟不上", "只能靠", "靠人工", "效果有限", "效果不好",
    "出苗", "死亡率", "发病", "感染", "虫害", "病害", "减产", "瓶颈", "掉电", "衰减", "充不进", "对不上", "打乱",
    "鼓包", "翻浆", "损坏", "破损", "就坏", "易坏", "容易坏", "需要解决", "需解决", "要解决", "难题", "难点",
    "need to solve", "needs to solve", "нужно решить", "необходимо решить",
    # en
    "crack", "peel", "corros", "rust", "wear", "leak", "drift", "deform", "icing", "clog", "fouling", "exceed",
    "residue", "fail", "breakdown", "downtime", "noise", "vibrat", "porosity", "inclusion", "unstable", "defect",
    "cannot", "can't", "unable", "too slow", "too high", "too low", "contaminat", "spoil", "mould", "mold",
    # ru
    "трещин", "отслаив", "коррози", "износ", "утечк", "протечк", "деформац", "обледен", "засор", "превыш",
    "отказ", "поломк", "простой", "шум", "вибрац", "дефект", "не удаётся", "не удается", "невозможно",
    "нестабильн", "загрязн", "порч",
)
# A technical quality that is too low/high, short, poor or falling ("附着力下降", "转化率低", "保鲜期短").
_QUALITY = (r"(?:附着力|强度|硬度|韧性|精度|寿命|保质期|保鲜期|货架期|稳定性|纯度|转化率|收率|得率|产率|"
            r"合格率|良品率|成品率|"
            r"整精米率|出品率|效率|能耗|含量|活性|存活率|灵敏度|检出限|一致性|均匀性|耐寒性|耐候性|耐磨性|密封性|产量|"
            r"adhesion|strength|hardness|accuracy|precision|lifetime|service life|shelf life|yield|purity|efficiency|"
            r"прочност|точност|ресурс|срок хранения|выход|чистот|эффективност)")
_PROBLEM = re.compile("|".join(re.escape(w) for w in _PROBLEM_WORDS)
                      + rf"|{_QUALITY}[^，。；,;.]{{0,8}}"
                        r"(?:低|差|短|下降|降低|不足|不够|偏低|偏高|过高|太高|太低|不好|不高|"
                        r"drops|falls|is low|is poor|too|низк|падает|снижа)", re.I)
# Business wishes that say why, not what (kept out of the problem aspect).
_BUSINESS = re.compile(r"利润|市场|竞争|附加值|份额|品牌|管理水平|技术水平|技术含量|产业链|转型|档次|科技含量|体验|"
                       r"competitive|market share|added value|конкурент|рыночн", re.I)

# How it is done today: an approach named outright ("采用…", "只能靠…", "已尝试…"), or a "today"
# word in the same clause as a method, process or piece of equipment.
_CURRENT = re.compile(
    r"采用|沿用|人工|只能靠|全靠|都靠|主要靠|依靠|靠人|凭经验|靠经验|已尝试|试过|尝试过|用的是|使用的是|现用|现行|传统工艺|传统方法|"
    r"we use|we currently use|is done by|by hand|manually|have tried|conventional|"
    r"используем|применяем|вручную|пробовали", re.I)
_CURRENT_WEAK = re.compile(r"目前|现在|现有|原有|原来|一直|currently|at present|today|existing|сейчас|"
                           r"в настоящее время|существующ", re.I)
_APPROACH = re.compile(r"用|靠|通过|工艺|方法|设备|方式|生产线|体系|办法|检测|处理|配方|材料|系统|装置|流程|"
                       r"process|method|equipment|line|system|material|процесс|метод|оборудован|систем|материал", re.I)
_TARGET = re.compile(
    rf"(?:达到|提高到|提升到|提高至|提升至|降低到|降低至|降到|降至|减少到|控制在|缩短到|缩短至|延长到|延长至|不低于|不高于|"
    rf"不超过|不少于|不大于|不小于|小于|大于|低于|高于|以内|以上|以下|目标|指标|要求|满足)[^。；;\n]{{0,24}}?{_NUM}|"
    rf"{_NUM}\s*{_UNITS}?\s*(?:以上|以下|以内|之内)|[≥≤]\s*{_NUM}|"
    r"(?:at least|at most|no more than|no less than|below|above|under|within|target|reach|down to|up to)"
    r"\s+[^.;\n]{0,20}?\d|"
    rf"(?:не менее|не более|не ниже|не выше|до|цель)\s+[^.;\n]{{0,20}}?\d", re.I)
_BUDGET = re.compile(
    rf"(?:预算|经费|资金|投入|投资|费用|budget|funding|бюджет)?[^。；;\n\d]{{0,6}}?{_NUM}\s*"
    r"(?:万元|千元|元|亿元|CNY|RMB|yuan|USD|млн\.? руб|тыс\.? руб|руб|юан)|"
    r"预算|经费|资金|投入|投资|费用|价格|报价|万元|千元|元|面议|出资|资助|"
    r"budget|funding|fund|cost(?:s)? up to|CNY|RMB|yuan|USD|\$|"
    r"бюджет|финансир|руб|юан|стоимост", re.I)
_TIMELINE = re.compile(
    rf"{_NUM}\s*(?:个月|个?星期|周|天|年内|年|季度)|年底|年内|月底|月内|季度|期限|周期|工期|之前|以前|前完成|尽快|"
    r"20\d\d\s*年|明年|今年|下半年|上半年|"
    r"\d+\s*(?:months?|weeks?|days?|years?)|deadline|by (?:the end|20\d\d)|within|"
    r"\d+\s*(?:месяц|недел|дн|лет|год)|срок|до конца|квартал", re.I)
_RULES = {"target": _TARGET, "budget": _BUDGET, "timeline": _TIMELINE}
# Budget and timeline alone do not make a demand matchable: "vague" means none of these.
SUBSTANCE = ("problem", "current", "constraints", "target")


@dataclass(frozen=True)
class AspectHit:
    key: str
    found: bool
    evidence: str  # the words that showed it ("" when missing)


@dataclass(frozen=True)
class FillingCheck:
    aspects: tuple[AspectHit, ...]
    vague: bool  # names none of the substance aspects (problem, current approach, constraints, target)
    chars: int  # length of title + text

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.aspects if not a.found)

    @property
    def found(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.aspects if a.found)

    @property
    def questions(self) -> tuple[str, ...]:
        """The questions staff would ask, one per missing aspect (English)."""
        return tuple(ASPECTS[k].question for k in self.missing)

    def as_dict(self) -> dict:
        return {"vague": self.vague, "found": list(self.found), "missing": list(self.missing),
                "evidence": {a.key: a.evidence for a in self.aspects if a.found}, "chars": self.chars}


def _snippet(text: str, m: re.Match) -> str:
    return text[m.start():m.end()].strip()


def _problem(text: str) -> str:
    for m in _PROBLEM.finditer(text):
        clause = re.split(r"[，。；,;.!?！？\n]", text[:m.start()])[-1] + text[m.start():m.end()]
        if not _BUSINESS.search(clause):
            return _snippet(text, m)
    return ""


def _clause(text: str, m: re.Match) -> str:
    """The clause (between punctuation marks) around a match."""
    start = max(text.rfind(p, 0, m.start()) for p in "，。；,;.!?！？\n") + 1
    ends = [i for i in (text.find(p, m.end()) for p in "，。；,;!?！？\n") if i >= 0]
    return text[start:min(ends, default=len(text))]


def _current(text: str) -> str:
    for m in _CURRENT.finditer(text):
        if not _BUSINESS.search(_clause(text, m)):
            return _snippet(text, m)
    for m in _CURRENT_WEAK.finditer(text):
        clause = _clause(text, m)
        if _APPROACH.search(clause[clause.find(m.group(0)) + len(m.group(0)):]) and not _BUSINESS.search(clause):
            return _snippet(text, m)
    return ""


def _constraints(text: str) -> str:
    for m in _CONSTRAINT.finditer(text):
        found = _snippet(text, m)
        tail = text[m.end():m.end() + 2]
        if re.fullmatch(r"20\d\d", found) or found.endswith("个") and re.match(r"月|星期", tail):
            continue  # a year or a duration: the timeline's
        if re.search(r"元|万元", found) or re.match(r"万?元", tail):
            continue  # money: the budget's
        return found
    return ""


def check_demand(title: str, text: str = "") -> FillingCheck:
    """The six aspects found in a demand's title and text, and whether it is vague."""
    whole = f"{title or ''}\n{text or ''}".strip()
    hits = {"problem": _problem(whole), "current": _current(whole), "constraints": _constraints(whole)}
    for key, rule in _RULES.items():
        m = rule.search(whole)
        hits[key] = _snippet(whole, m) if m else ""
    aspects = tuple(AspectHit(k, bool(hits[k]), hits[k]) for k in ASPECTS)
    return FillingCheck(aspects=aspects, vague=not any(hits[k] for k in SUBSTANCE), chars=len(whole))
