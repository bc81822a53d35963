"""The bureau's known values: Qiqihar's key industries and its counties and districts.

A demand's ``industry`` and ``region`` are chosen from these lists (the web form offers them,
the filters group by them), so "轨道交通" and "轨道交通装备", or "讷河" and "讷河市", are one
value, and a typo or an invented place ("火星区") is refused instead of becoming a filter entry
of its own. Each value has a canonical Chinese name, aliases people write (short forms, the
city prefix "齐齐哈尔市富拉尔基区", English and Russian names) and labels in zh, en and ru.

Base layer: imports nothing from techmatch.

    canonical_industry("轨道交通")  -> "轨道交通装备"
    canonical_region("讷河")        -> "讷河市"
    regions_within("齐齐哈尔市")     -> the city, its 7 districts, 1 county-level city, 8 counties
    label("region", "讷河市", "en") -> "Nehe City"
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

LANGUAGES = ("zh", "en", "ru")


@dataclass(frozen=True)
class Term:
    """One known value: canonical Chinese name, labels per language, extra aliases."""

    zh: str
    en: str
    ru: str
    aliases: tuple[str, ...] = ()


# The 12 key industries (重点产业) the demo corpus and the bureau's sheets use.
_INDUSTRIES = (
    Term("轨道交通装备", "Rail transit equipment", "Железнодорожное оборудование",
         ("轨道交通", "轨道交通装备制造", "铁路装备", "铁路车辆", "轨道车辆", "rail transit", "railway equipment")),
    Term("重型机械", "Heavy machinery", "Тяжёлое машиностроение",
         ("重型装备", "重机", "重型装备制造", "装备制造", "heavy equipment", "machinery")),
    Term("绿色食品与粮食加工", "Green food and grain processing", "Экологичные продукты и переработка зерна",
         ("绿色食品", "粮食加工", "食品加工", "农产品加工", "绿色食品加工", "food processing", "grain processing")),
    Term("乳业", "Dairy", "Молочная промышленность",
         ("乳制品", "乳品", "奶业", "乳品加工", "dairy industry")),
    Term("冶金与特钢", "Metallurgy and special steel", "Металлургия и специальные стали",
         ("冶金", "特钢", "特殊钢", "钢铁", "冶金特钢", "metallurgy", "special steel")),
    Term("新材料", "New materials", "Новые материалы",
         ("新材料产业", "先进材料", "advanced materials")),
    Term("化工", "Chemical industry", "Химическая промышленность",
         ("化学工业", "精细化工", "石油化工", "chemicals", "chemical")),
    Term("生物医药", "Biomedicine", "Биомедицина",
         ("医药", "生物制药", "医药健康", "biopharmaceuticals", "pharmaceuticals")),
    Term("新能源与生物质", "New energy and biomass", "Новая энергетика и биомасса",
         ("新能源", "生物质", "生物质能", "可再生能源", "new energy", "renewable energy", "biomass")),
    Term("现代农业与畜牧业", "Modern agriculture and animal husbandry",
         "Современное сельское хозяйство и животноводство",
         ("现代农业", "农业", "畜牧业", "畜牧", "农牧业", "agriculture", "animal husbandry")),
    Term("数字经济", "Digital economy", "Цифровая экономика",
         ("信息技术", "数字化", "软件与信息服务", "digital", "information technology")),
    Term("寒地技术", "Cold-region technology", "Технологии для холодного климата",
         ("寒区技术", "寒地", "寒区", "冰雪", "cold region technology", "cold climate technology")),
)

CITY = "齐齐哈尔市"
# The city first, then its 7 districts, 1 county-level city and 8 counties in the official order.
_REGIONS = (
    Term(CITY, "Qiqihar City", "Цицикар", ("齐齐哈尔", "齐市", "qiqihar")),
    Term("龙沙区", "Longsha District", "район Лунша", ("龙沙", "longsha")),
    Term("建华区", "Jianhua District", "район Цзяньхуа", ("建华", "jianhua")),
    Term("铁锋区", "Tiefeng District", "район Тефэн", ("铁锋", "tiefeng")),
    Term("昂昂溪区", "Ang'angxi District", "район Анъанси", ("昂昂溪", "angangxi", "ang'angxi")),
    Term("富拉尔基区", "Fularji District", "район Фуларди", ("富拉尔基", "富区", "fularji", "fulaerji")),
    Term("碾子山区", "Nianzishan District", "район Няньцзышань", ("碾子山", "nianzishan")),
    Term("梅里斯达斡尔族区", "Meilisi Daur District", "Мэйлисы-Дахурский район",
         ("梅里斯区", "梅里斯", "梅里斯达斡尔区", "meilisi", "meilisi daur")),
    Term("讷河市", "Nehe City", "Нэхэ", ("讷河", "nehe")),
    Term("龙江县", "Longjiang County", "уезд Лунцзян", ("龙江", "longjiang")),
    Term("依安县", "Yi'an County", "уезд Иань", ("依安", "yian", "yi'an")),
    Term("泰来县", "Tailai County", "уезд Тайлай", ("泰来", "tailai")),
    Term("甘南县", "Gannan County", "уезд Ганьнань", ("甘南", "gannan")),
    Term("富裕县", "Fuyu County", "уезд Фуюй", ("富裕", "fuyu")),
    Term("克山县", "Keshan County", "уезд Кэшань", ("克山", "keshan")),
    Term("克东县", "Kedong County", "уезд Кэдун", ("克东", "kedong")),
    Term("拜泉县", "Baiquan County", "уезд Байцюань", ("拜泉", "baiquan")),
)

INDUSTRIES: tuple[str, ...] = tuple(t.zh for t in _INDUSTRIES)
REGIONS: tuple[str, ...] = tuple(t.zh for t in _REGIONS)
# What the city contains (a county-level city such as 讷河市 contains only itself here).
_WITHIN = {CITY: frozenset(REGIONS)}

_CITY_PREFIX = re.compile(r"^(黑龙江省)?\s*(齐齐哈尔市|齐齐哈尔)\s*(?=\S)")
_SPACES = re.compile(r"[\s\u3000·・.\-_/]+")


def _key(value: str) -> str:
    """Comparison key: NFKC, case-folded, spaces, dots and dashes removed."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", value).casefold())


def _lookup(terms: tuple[Term, ...]) -> dict[str, str]:
    table: dict[str, str] = {}
    for t in terms:
        for name in (t.zh, t.en, t.ru, *t.aliases):
            key = _key(name)
            if table.setdefault(key, t.zh) != t.zh:
                raise AssertionError(f"alias {name!r} names both {table[key]} and {t.zh}")
    return table


_INDUSTRY_OF = _lookup(_INDUSTRIES)
_REGION_OF = _lookup(_REGIONS)
_TERMS = {"industry": {t.zh: t for t in _INDUSTRIES}, "region": {t.zh: t for t in _REGIONS}}


def canonical_industry(value: str) -> str | None:
    """The canonical name of a known industry written any known way, else None."""
    return _INDUSTRY_OF.get(_key(value or "")) or None


def canonical_region(value: str) -> str | None:
    """The canonical name of the city or one of its counties/districts, else None.

    The city prefix may be written ("齐齐哈尔市富拉尔基区", "黑龙江省齐齐哈尔市讷河市")."""
    key = _key(value or "")
    if not key:
        return None
    found = _REGION_OF.get(key)
    if found is None:
        rest = _CITY_PREFIX.sub("", unicodedata.normalize("NFKC", value).strip())
        found = _REGION_OF.get(_key(rest))
    return found


def regions_within(name: str) -> frozenset[str]:
    """Canonical regions a region contains, itself included (the city gives all 17); an
    unknown name gives an empty set."""
    canon = canonical_region(name)
    if canon is None:
        return frozenset()
    return _WITHIN.get(canon, frozenset({canon}))


def label(kind: str, canonical: str, lang: str) -> str:
    """The display name of a canonical ``kind`` ("industry" or "region") value in ``lang``
    ("zh", "en", "ru"). An unknown kind or language is a ValueError; an unknown value is
    returned as given (a stored value from before the taxonomy still displays)."""
    if kind not in _TERMS:
        raise ValueError(f"unknown kind {kind!r}; use one of: {', '.join(_TERMS)}")
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; use one of: {', '.join(LANGUAGES)}")
    term = _TERMS[kind].get(canonical)
    return getattr(term, lang) if term else canonical


def known_values(kind: str) -> tuple[str, ...]:
    """INDUSTRIES or REGIONS by kind name ("industry" or "region")."""
    return {"industry": INDUSTRIES, "region": REGIONS}[kind]


def spellings(kind: str) -> tuple[str, ...]:
    """Every name a ``kind`` value is known by (canonical, zh/en/ru labels, aliases), for an
    input schema's list of allowed values; `canonical` also accepts them in any case and spacing."""
    terms = _INDUSTRIES if kind == "industry" else _REGIONS
    return tuple(dict.fromkeys(n for t in terms for n in (t.zh, t.en, t.ru, *t.aliases)))


def canonical(kind: str, value: str) -> str | None:
    """`value` as its canonical ``kind`` name; "" for an empty value; None if unknown."""
    if not (value or "").strip():
        return ""
    return (canonical_industry if kind == "industry" else canonical_region)(value)


def unknown_message(kind: str, value: str) -> str:
    """The error for an unknown value, listing the known ones (zh and en)."""
    what = {"industry": "unknown industry (不在重点产业目录中)", "region": "unknown county or district (不是本市县区)"}
    return f"{what[kind]}: '{value}'; known: {'、'.join(known_values(kind))}"


# Place names beyond the city's own counties and districts that the bureau's texts mention:
# Heilongjiang's prefecture-level cities, the province's neighbours and China's large cities and
# regions. Used to keep place names whole when segmenting reasons (no "哈尔" out of "齐齐哈尔" and
# "哈尔滨") and to leave them out of shared terms (a place says where, not what).
_PROVINCE = ("黑龙江", "黑龙江省", "哈尔滨", "齐齐哈尔", "大庆", "牡丹江", "佳木斯", "鸡西", "鹤岗", "双鸭山",
             "伊春", "七台河", "黑河", "绥化", "大兴安岭", "加格达奇", "北大荒", "松嫩平原", "三江平原", "嫩江",
             "松花江", "五大连池", "北安", "海伦", "肇东", "安达", "尚志", "五常", "绥芬河", "抚远", "漠河")
_ELSEWHERE = ("北京", "上海", "天津", "重庆", "长春", "吉林", "沈阳", "大连", "呼和浩特", "呼伦贝尔", "满洲里",
              "石家庄", "太原", "济南", "青岛", "郑州", "武汉", "长沙", "南京", "杭州", "合肥", "南昌", "福州",
              "厦门", "广州", "深圳", "南宁", "海口", "成都", "贵阳", "昆明", "拉萨", "西安", "兰州", "西宁",
              "银川", "乌鲁木齐", "辽宁", "吉林省", "内蒙古", "河北", "山东", "江苏", "浙江", "广东", "四川",
              "东北", "华北", "华东", "华南", "华中", "西北", "西南", "东北地区", "东三省", "全国", "全省", "全市",
              "俄罗斯", "远东")
_PLACE_SUFFIX = ("省", "市", "县", "区")


def place_names() -> frozenset[str]:
    """Chinese place names: the city, its counties and districts with their aliases (and each
    with its suffix 市/县/区 dropped), the province's cities and China's large cities and regions."""
    names = {n for t in _REGIONS for n in (t.zh, *t.aliases) if not n.isascii()}
    names |= {n[:-1] for n in names if n.endswith(_PLACE_SUFFIX) and len(n) > 2}
    names |= set(_PROVINCE) | set(_ELSEWHERE)
    names |= {n + s for n in _PROVINCE for s in ("市",) if not n.endswith(("省", "岭", "原", "江"))}
    return frozenset(names)


def industry_names() -> frozenset[str]:
    """Chinese names of the key industries with their aliases."""
    return frozenset(n for t in _INDUSTRIES for n in (t.zh, *t.aliases) if not n.isascii())
