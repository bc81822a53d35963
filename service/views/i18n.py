"""The web page's strings in Chinese and English. Chinese is the default."""

from __future__ import annotations

from service.views.i18n_planning import PLANNING_STRINGS

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

STRINGS: dict[str, dict[str, str]] = {
    "app_name": {"zh": "科技供需对接平台", "en": "Technology matchmaking"},
    "bureau": {"zh": "齐齐哈尔市科学技术局", "en": "Qiqihar Science and Technology Bureau"},
    "nav_demands": {"zh": "技术需求", "en": "Demands"},
    "nav_upload": {"zh": "导入表格", "en": "Upload"},
    "nav_profile": {"zh": "与我相关的需求", "en": "Demands for my profile"},
    "nav_logout": {"zh": "退出", "en": "Log out"},
    "signed_in_as": {"zh": "当前身份", "en": "Signed in as"},
    "login_title": {"zh": "登录", "en": "Sign in"},
    "login_help": {"zh": "请输入科技局发放的访问令牌。", "en": "Enter the access token the bureau gave you."},
    "token": {"zh": "访问令牌", "en": "Token"},
    "login_button": {"zh": "登录", "en": "Sign in"},
    "login_failed": {"zh": "令牌无效或已过期。", "en": "Unknown or expired token."},
    "search": {"zh": "搜索", "en": "Search"},
    "search_placeholder": {"zh": "关键词、编号……", "en": "Keywords, id ..."},
    "mode": {"zh": "方式", "en": "Mode"},
    "mode_keyword": {"zh": "关键词", "en": "Keyword"},
    "mode_semantic": {"zh": "语义", "en": "Semantic"},
    "industry": {"zh": "行业", "en": "Industry"},
    "region": {"zh": "地区", "en": "Region"},
    "all": {"zh": "全部", "en": "All"},
    "id": {"zh": "编号", "en": "Id"},
    "title": {"zh": "标题", "en": "Title"},
    "enterprise": {"zh": "企业", "en": "Enterprise"},
    "contact": {"zh": "联系方式", "en": "Contact"},
    "date": {"zh": "日期", "en": "Date"},
    "score": {"zh": "得分", "en": "Score"},
    "confidential": {"zh": "保密", "en": "Confidential"},
    "unpublished": {"zh": "未发布", "en": "Unpublished"},
    "no_results": {"zh": "没有结果。", "en": "No results."},
    "results_total": {"zh": "共 {n} 条", "en": "{n} in total"},
    "prev": {"zh": "上一页", "en": "Previous"},
    "next": {"zh": "下一页", "en": "Next"},
    "demand_text": {"zh": "需求描述", "en": "Description"},
    "partners_title": {"zh": "推荐合作方", "en": "Suggested partners"},
    "partners_help": {"zh": "按匹配度排序；高亮的是与需求共有的关键词。",
                      "en": "Ranked by fit; highlighted words are shared with the demand."},
    "partner_type": {"zh": "类型", "en": "Type"},
    "k": {"zh": "数量", "en": "How many"},
    "apply": {"zh": "筛选", "en": "Apply"},
    "reasons": {"zh": "匹配依据", "en": "Reasons"},
    "shared_terms": {"zh": "共有关键词", "en": "Shared terms"},
    "components": {"zh": "得分构成", "en": "Score components"},
    "dense": {"zh": "语义相似度", "en": "Semantic similarity"},
    "lexical": {"zh": "关键词得分", "en": "Keyword score"},
    "lexical_weight": {"zh": "关键词权重", "en": "Keyword weight"},
    "support": {"zh": "多项能力加成", "en": "Breadth bonus"},
    "feedback": {"zh": "对接反馈", "en": "Feedback"},
    "feedback_history": {"zh": "反馈记录", "en": "Feedback history"},
    "status": {"zh": "状态", "en": "Status"},
    "reason": {"zh": "说明", "en": "Reason"},
    "reason_placeholder": {"zh": "拒绝时必填", "en": "Required when rejected"},
    "record": {"zh": "记录", "en": "Record"},
    "who": {"zh": "记录人", "en": "By"},
    "when": {"zh": "时间", "en": "When"},
    "partner": {"zh": "合作方", "en": "Partner"},
    "no_feedback": {"zh": "暂无反馈。", "en": "No feedback yet."},
    "feedback_saved": {"zh": "反馈已记录。", "en": "Feedback recorded."},
    "export_csv": {"zh": "导出 CSV", "en": "Export CSV"},
    "st_contacted": {"zh": "已联系", "en": "Contacted"},
    "st_meeting_held": {"zh": "已会谈", "en": "Meeting held"},
    "st_accepted": {"zh": "已达成合作", "en": "Accepted"},
    "st_rejected": {"zh": "未合作", "en": "Rejected"},
    "no_partners_visible": {"zh": "此身份不查看推荐合作方。", "en": "Suggested partners are not shown to this role."},
    "upload_title": {"zh": "导入表格", "en": "Upload a spreadsheet"},
    "upload_help": {"zh": "支持 CSV、XLSX、JSONL；中英文表头均可。任何一行有误则整份文件不导入。",
                    "en": "CSV, XLSX or JSONL, Chinese or English headers. If any row is wrong, nothing is imported."},
    "kind": {"zh": "类型", "en": "Kind"},
    "kind_demands": {"zh": "技术需求", "en": "Demands"},
    "kind_capabilities": {"zh": "技术成果/能力", "en": "Capabilities"},
    "kind_partners": {"zh": "合作单位", "en": "Partners"},
    "file": {"zh": "文件", "en": "File"},
    "mapping": {"zh": "列映射（可选，如 问题=text）", "en": "Column mapping (optional, e.g. Problem=text)"},
    "upload_button": {"zh": "上传并导入", "en": "Upload and import"},
    "match_rejected": {"zh": "已标记为未合作，排在未拒绝的合作方之后",
                       "en": "Marked as rejected; listed after the partners not rejected",
                       "ru": "Отмечен как отклонённый; показан после неотклонённых"},
    "match_rejected_reason": {"zh": "。原因：", "en": ". Reason: ", "ru": ". Причина: "},
    "upload_mode": {"zh": "编号已存在的记录", "en": "Records whose id already exists",
                    "ru": "Записи с уже известным номером"},
    "upload_mode_update": {
        "zh": "只更新文件中有的列（文件没有的列，如英文标题、语言，保持原值；文件中的空单元格会清空该项）",
        "en": "Update only the columns the file has (columns it lacks, such as an English title or the language, "
              "keep their values; an empty cell in the file empties that field)",
        "ru": "Обновить только столбцы, которые есть в файле (остальные, например английский заголовок или язык, "
              "сохраняются; пустая ячейка очищает поле)"},
    "upload_mode_replace": {
        "zh": "整条替换为文件中的内容（文件没有的列被清空）",
        "en": "Replace the whole record with the file's row (columns the file lacks are emptied)",
        "ru": "Заменить запись строкой файла целиком (отсутствующие в файле столбцы очищаются)"},
    "upload_ok": {"zh": "导入成功：新增 {created} 条，更新 {updated} 条。",
                  "en": "Imported: {created} new, {updated} updated."},
    "upload_failed": {"zh": "文件有问题，未导入任何记录：", "en": "The file has problems; nothing was imported:"},
    "row": {"zh": "行", "en": "Row"},
    "field": {"zh": "字段", "en": "Field"},
    "message": {"zh": "问题", "en": "Problem"},
    "profile_title": {"zh": "与本单位能力相关的需求", "en": "Demands relevant to my profile"},
    "profile_help": {"zh": "根据本单位登记的全部技术能力推荐。",
                     "en": "Found from all the capabilities your unit registered."},
    "free_search": {"zh": "按描述搜索需求", "en": "Search demands by description"},
    "free_placeholder": {"zh": "例如：寒区材料低温性能测试", "en": "e.g. low-temperature testing of materials"},
    "error": {"zh": "出错了", "en": "Error"},
    "back": {"zh": "返回", "en": "Back"},
    "to_login": {"zh": "去登录", "en": "Sign in"},
    "pt_university": {"zh": "高校", "en": "university"},
    "pt_institute": {"zh": "科研院所", "en": "institute"},
    "pt_team": {"zh": "团队", "en": "team"},
    "pt_enterprise": {"zh": "企业", "en": "enterprise"},
    "pt_other": {"zh": "其他", "en": "other"},
    "role_admin": {"zh": "管理员", "en": "Admin"},
    "role_staff": {"zh": "科技局工作人员", "en": "Bureau staff"},
    "role_institute": {"zh": "科研单位", "en": "Institute"},
    "role_enterprise": {"zh": "企业", "en": "Enterprise"},
    **PLANNING_STRINGS,
}


def translator(lang: str):
    """A function key -> string in `lang` (falls back to Chinese, then to the key)."""
    lang = lang if lang in LANGS else DEFAULT_LANG

    def t(key: str, **kw: object) -> str:
        entry = STRINGS.get(key)
        text = entry.get(lang) or entry.get(DEFAULT_LANG, key) if entry else key
        return text.format(**kw) if kw else text

    return t
