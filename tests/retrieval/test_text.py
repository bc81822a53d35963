from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.retrieval.text import Tokenizer, guess_language, normalize, shared_terms, showable_terms


def test_normalize_fullwidth_and_controls():
    assert normalize("ＡＢＣ　１２３\x07 x") == "ABC 123 x"


def test_chinese_is_segmented_into_words_and_subwords():
    toks = Tokenizer()("铁路货车车体防腐涂层")
    assert "涂层" in toks and "防腐" in toks and "货车" in toks
    assert all(len(t) > 1 for t in toks)


def test_english_and_russian_are_stemmed_and_stopworded():
    tok = Tokenizer()
    assert tok("The coatings of freight cars") == ["coat", "freight", "car"]
    assert tok("покрытия для вагонов") == ["покрыт", "вагон"]


def test_mixed_scripts_keep_order_and_numbers():
    toks = Tokenizer()("PLC 控制系统 -40 °C coatings")
    assert toks[0] == "plc" and "40" in toks and toks[-1] == "coat"


def test_guess_language():
    assert guess_language("低温涂层") == "zh"
    assert guess_language("антикоррозионные покрытия") == "ru"
    assert guess_language("rail freight cars") == "en"
    assert guess_language("12345") == ""


def test_shared_terms_prefers_informative_and_drops_subwords():
    q = ["防腐涂层", "防腐", "涂层", "低温"]
    d = ["防腐涂层", "涂层", "低温", "防腐"]
    terms = shared_terms(q, d, {"防腐涂层": 3.0, "防腐": 1.0, "涂层": 1.0, "低温": 2.0})
    assert terms == ("防腐涂层", "低温")


def test_shared_terms_skip_numbers_and_common_words():
    terms = shared_terms(["货车", "45", "体系", "防腐"], ["货车", "45", "体系", "防腐"],
                         {"货车": 3.0, "45": 4.0, "体系": 1.0, "防腐": 2.5}, min_idf=2.0)
    assert terms == ("货车", "防腐")


def test_latin_letters_do_not_swallow_chinese():
    assert Tokenizer()("°C至PLC控制")[-2:] == ["plc", "控制"]


ASCII_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=300)


@settings(max_examples=300, deadline=None)
@given(text=ASCII_TEXT, stem=st.booleans(), keep_stopwords=st.booleans())
def test_ascii_fast_path_gives_the_general_tokens(text, stem, keep_stopwords):
    tok = Tokenizer(stem=stem, keep_stopwords=keep_stopwords)
    assert tok._ascii(text) == tok._any_script(text)


def test_ascii_fast_path_on_typical_english():
    text = "The Dimensional Management System's 3.5-mm tolerances; re-work\x07cost  (SBIR Phase-II) 2024."
    tok = Tokenizer()
    assert tok(text) == tok._any_script(text)
    assert "3.5" in tok(text) and "re-work" in tok(text)


def test_guess_language_ascii_without_letters_is_unknown():
    assert guess_language("12 - 34 %") == ""
    assert guess_language("") == ""


def test_shared_terms_leave_out_generic_process_words():
    """They still count for the score; they only make poor reasons."""
    query, doc = ["生产", "玉米", "合作", "淀粉", "至"], ["玉米", "淀粉", "生产", "合作", "至"]
    assert set(shared_terms(query, doc)) == {"玉米", "淀粉"}
    assert "生产" in Tokenizer()("玉米淀粉生产")  # indexed and scored as before


TERMS = st.sampled_from(["玉米", "淀粉", "生产", "至", "45", "3.5", "防腐", "涂层", "防腐涂层", "低温", "coating",
                         "rail", "the", "wagon", "低温防腐涂层"])


@settings(max_examples=400, deadline=None)
@given(query=st.lists(TERMS, max_size=12), doc=st.lists(TERMS, max_size=12),
       idf=st.dictionaries(TERMS, st.floats(0.0, 4.0), max_size=10), min_idf=st.floats(0.0, 2.0),
       compounds=st.dictionaries(TERMS, st.floats(0.0, 4.0), max_size=3), hidden=st.sets(TERMS, max_size=3),
       whole=st.none() | st.sets(TERMS))
def test_a_query_set_tested_once_gives_the_terms_its_tokens_give(query, doc, idf, min_idf, compounds, hidden,
                                                                 whole):
    """`showable_terms` tests a query's terms once per request; shared_terms given that set
    does not test them again and shows the same terms as from the query's tokens, whatever the
    document and its compounds."""
    def show(term):
        return term not in hidden

    once = showable_terms(query, idf, min_idf, show)
    for c in (compounds, None):
        args = dict(idf=idf, min_idf=min_idf, whole_words=whole, compounds=c, show=show)
        assert shared_terms(once, doc, **args) == shared_terms(query, doc, **args)
