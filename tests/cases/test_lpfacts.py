"""The strict case-fact reader: what it accepts, what it refuses, where, and how fast."""

from __future__ import annotations

import os
import pickle
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kineret_asp.asp.fact_files import MAX_LP_BYTES, ArgSpec, LpFact, LpFactError, read_lp_facts, read_lp_file

DRUGS = frozenset({"methotrexate", "hydroxychloroquine", "leflunomide", "sulfasalazine"})
OUTCOMES = frozenset({"failure", "intolerance", "contraindication"})
INDEX = ArgSpec("index", minimum=0, maximum=999, label="an entry number")
SCHEMA = {
    ("case_indication", 1): (ArgSpec("key", frozenset({"rheumatoid_arthritis", "sjia"}), label="an indication key"),),
    ("case_plan", 1): (ArgSpec("key", frozenset({"individual_family", "employer_group"}), label="a plan key"),),
    ("case_specialty", 1): (ArgSpec("key", frozenset({"rheumatology", "dermatology"}), label="a specialty key"),),
    ("case_genetic_test", 3): (INDEX, ArgSpec("name", label="a gene name"), ArgSpec("key", frozenset({"mutation_confirmed", "negative"}), label="a test result")),
    ("case_history", 3): (INDEX, ArgSpec("key", DRUGS, open=True, label="a drug key"), ArgSpec("key", OUTCOMES, label="an outcome key")),
    ("case_history_months", 2): (INDEX, ArgSpec("integer", minimum=0, maximum=1200, label="a number of months")),
    ("case_history_sample", 1): (INDEX,),
    ("case_note", 1): (ArgSpec("string", label="a note"),),
    ("case_count", 1): (ArgSpec("integer"),),
    ("case_beneficial_response", 0): (),
}

EXAMPLE = b"""% comment line
case_indication(rheumatoid_arthritis).
case_plan(individual_family).
case_specialty(rheumatology).
case_genetic_test(0, "IL1RN", mutation_confirmed).
case_history(0, hydroxychloroquine, failure).
case_history_months(0, 3).
case_history_sample(1).
case_beneficial_response.
"""


def read(data: bytes | str, **kw) -> list[LpFact]:
    return read_lp_facts(data.encode() if isinstance(data, str) else data, SCHEMA, **kw)


def refused(data: bytes | str, **kw) -> LpFactError:
    with pytest.raises(LpFactError) as info:
        read(data, **kw)
    return info.value


def assert_refused(data: bytes | str, line: int, column: int, *words: str, **kw) -> LpFactError:
    err = refused(data, **kw)
    assert (err.line, err.column) == (line, column), str(err)
    for word in words:
        assert word in err.message, str(err)
    return err


# --- accepted input -----------------------------------------------------------------------------


def test_accepts_the_example_with_values_quoting_and_places():
    facts = read(EXAMPLE)
    assert [(f.predicate, f.args, f.quoted, f.line, f.column) for f in facts] == [
        ("case_indication", ("rheumatoid_arthritis",), (False,), 2, 1),
        ("case_plan", ("individual_family",), (False,), 3, 1),
        ("case_specialty", ("rheumatology",), (False,), 4, 1),
        ("case_genetic_test", (0, "IL1RN", "mutation_confirmed"), (False, True, False), 5, 1),
        ("case_history", (0, "hydroxychloroquine", "failure"), (False, False, False), 6, 1),
        ("case_history_months", (0, 3), (False, False), 7, 1),
        ("case_history_sample", (1,), (False,), 8, 1),
        ("case_beneficial_response", (), (), 9, 1),
    ]
    assert all(isinstance(f.args[0], int) for f in facts if f.predicate.startswith("case_history"))


def test_empty_and_comment_only_files_give_no_facts():
    assert read(b"") == []
    assert read(b"% nothing\n%* block\n comment *%\n  \t\n") == []


def test_whitespace_crlf_and_tabs_between_tokens_are_accepted():
    facts = read(b"case_history (\t0 ,\r\n methotrexate , failure )\r\n . case_plan(employer_group).case_beneficial_response.")
    assert [(f.predicate, f.line, f.column) for f in facts] == [("case_history", 1, 1), ("case_plan", 3, 4), ("case_beneficial_response", 3, 30)]
    assert facts[0].args == (0, "methotrexate", "failure")


def test_string_escapes_are_decoded():
    facts = read(r'case_note("say \"hi\" \\ then\nnext").')
    assert facts[0].args == ('say "hi" \\ then\nnext',)
    assert facts[0].quoted == (True,)


def test_non_ascii_inside_strings_and_comments_is_accepted():
    facts = read('% café crème\n%* naïve *%\ncase_history(0, "clofazimine é", failure).\n'.encode())
    assert facts[0].args == (0, "clofazimine é", "failure")
    assert (facts[0].line, facts[0].column) == (3, 1)


def test_duplicates_are_returned_once_first_occurrence_kept():
    facts = read(b"case_specialty(rheumatology).\ncase_plan(employer_group).\ncase_specialty( rheumatology ).\n")
    assert [(f.predicate, f.line) for f in facts] == [("case_specialty", 1), ("case_plan", 2)]


def test_a_string_and_a_constant_are_different_facts():
    facts = read(b'case_history(0, methotrexate, failure).\ncase_history(0, "methotrexate", failure).\n')
    assert [f.quoted for f in facts] == [(False, False, False), (False, True, False)]


def test_indexes_are_not_interpreted_or_merged():
    facts = read(b"case_history(7, leflunomide, failure).\ncase_history(7, methotrexate, intolerance).\ncase_history_months(3, 2).\n")
    assert [f.args for f in facts] == [(7, "leflunomide", "failure"), (7, "methotrexate", "intolerance"), (3, 2)]


# --- locations after comments and strings -------------------------------------------------------


def test_lines_and_columns_after_block_comments():
    text = "%* one\ntwo\nthree *%  case_plan(employer_group).\n%* x *% case_specialty(rheumatology).\n"
    facts = read(text)
    assert [(f.line, f.column) for f in facts] == [(3, 11), (4, 9)]
    assert_refused("%* a\nb *%\n   %* c *% case_plan(nope).", 3, 22, "'nope' is not a plan key")


def test_lines_and_columns_after_strings():
    # a string with escaped quotes, a comment sign and non-ASCII text must not shift what follows
    text = 'case_note("a \\" % é \\\\").  case_note("x").\n  case_note("é") X.'
    facts = read(text.split("\n")[0])
    assert [(f.line, f.column) for f in facts] == [(1, 1), (1, 28)]
    assert_refused(text, 2, 18, "variable ('X')")
    assert_refused('case_history(0, "é\\"é", bad).', 1, 25, "'bad' is not an outcome key")


# --- whole-file refusals ------------------------------------------------------------------------


def test_byte_order_mark_is_refused():
    assert_refused(b"\xef\xbb\xbf" + EXAMPLE, 1, 1, "byte-order mark")


def test_invalid_utf8_reports_line_of_the_bad_byte():
    assert_refused(b'case_plan(employer_group).\n% ok\ncase_note("ab\xff").\n', 3, 14, "not valid UTF-8")
    assert_refused(b"\xc3(", 1, 1, "not valid UTF-8")
    assert_refused(b'case_note("\xed\xa0\x80").', 1, 12, "not valid UTF-8")  # an encoded surrogate
    assert_refused(b'case_note("\xc0\xaf").', 1, 12, "not valid UTF-8")  # an overlong form


def test_nul_byte_is_refused_in_a_comment():
    assert_refused(b"case_plan(employer_group).\n% hidden \x00 rest\n", 2, 10, "NUL")


def test_nul_byte_is_refused_in_a_string():
    assert_refused(b'case_note("ab\x00").', 1, 14, "NUL")


def test_bare_nul_byte_is_refused():
    assert_refused(b'case_plan(employer_group).\x00#include "x".', 1, 27, "NUL")
    assert_refused(b"\x00", 1, 1, "NUL")


def test_other_control_characters_are_refused():
    assert_refused(b"case_plan(employer_group).\x07", 1, 27, "U+0007")
    assert_refused(b"a.\rb.", 1, 3, "carriage return")
    assert_refused(b"% x\x0b\n", 1, 4, "U+000B")
    assert_refused(b'case_note("\x7f").', 1, 12, "U+007F")
    assert_refused('case_note("\u0085").'.encode(), 1, 12, "U+0085")


def test_the_earliest_encoding_problem_wins():
    assert_refused(b"a.\n\x01\n\xff", 2, 1, "U+0001")
    assert_refused(b"a.\n\xff\n\x01", 2, 1, "UTF-8")


def test_non_ascii_letter_outside_a_string_is_refused():
    assert_refused("case_specialty(rhéumatology).".encode(), 1, 18, "non-ASCII", "U+00E9")
    assert_refused("\ncasé.".encode(), 2, 4, "non-ASCII")
    assert_refused("case_history(0, méthotrexate, failure).".encode(), 1, 18, "non-ASCII")


def test_input_over_the_byte_cap_is_refused():
    assert_refused(b"a." * 6, 1, 0, "12 bytes", "at most 10", max_bytes=10)
    assert read(b"case_beneficial_response.", max_bytes=25)  # exactly at the cap
    assert_refused(b"case_beneficial_response.\n", 1, 0, "at most 25", max_bytes=25)
    assert MAX_LP_BYTES == 1_000_000


# --- statements that are not plain facts --------------------------------------------------------


def test_include_directive_is_refused():
    assert_refused(b'case_plan(employer_group).\n#include "x".\n', 2, 1, "directive", "#include", "only facts of the case vocabulary")
    assert_refused(b"#show case_plan/1.", 1, 1, "directive")


def test_string_spanning_lines_cannot_hide_an_include():
    assert_refused(b'x("\n. #include "p". %"', 1, 3, "strings cannot span lines")
    assert_refused(b'case_note("abc\r\n#include "p".\n").', 1, 11, "strings cannot span lines")


def test_rules_and_constraints_are_refused():
    assert_refused(b"case_plan(employer_group) :- case_beneficial_response.", 1, 27, "rule", "only facts of the case vocabulary")
    assert_refused(b":- case_beneficial_response.", 1, 1, "rule")
    assert_refused(b"case_plan(employer_group) :~ x. [1]", 1, 27, "weak constraint")


def test_variables_are_refused():
    assert_refused(b"case_specialty(X).", 1, 16, "variable ('X')", "only facts")
    assert_refused(b"case_specialty(_).", 1, 16, "variable ('_')")
    assert_refused(b"case_history(0, Drug, failure).", 1, 17, "variable ('Drug')")


def test_classical_negation_of_a_fact_is_refused():
    assert_refused(b"case_plan(employer_group).\n-case_specialty(rheumatology).", 2, 1, "classical negation is not allowed in a case file")
    assert_refused(b"- case_specialty(rheumatology).", 1, 1, "classical negation")


def test_negated_argument_is_refused():
    assert_refused(b"case_specialty(-rheumatology).", 1, 16, "'-'")
    assert_refused(b"case_history_months(0, -3).", 1, 24, "'-'")
    assert_refused(b"case_history_months(0, +3).", 1, 24, "'+'")


def test_nested_term_is_refused():
    assert_refused(b"case_specialty(f(x)).", 1, 16, "nested term f(...)", "only facts")
    assert_refused(b"case_specialty(f (x)).", 1, 16, "nested term")
    assert_refused(b"case_specialty((rheumatology, x)).", 1, 16, "tuple")


@pytest.mark.parametrize("depth", [600, 30_000])
def test_deep_nesting_is_refused_fast_without_recursion(depth):
    terms = b"case_specialty(" + b"f(" * depth + b"x" + b")" * depth + b")."
    parens = b"case_specialty(" + b"(" * depth + b"x" + b")" * depth + b")."
    for data in (terms, parens):
        start = time.perf_counter()
        err = refused(data)  # pytest.raises(LpFactError): a RecursionError would fail the test
        assert time.perf_counter() - start < 0.5
        assert (err.line, err.column) == (1, 16)


@pytest.mark.parametrize(
    "text, column, words",
    [
        ("case_history_months(0, 1..3).", 25, "interval"),
        ("case_specialty(rheumatology; dermatology).", 28, "pool"),
        ("case_specialty(rheumatology) | case_plan(employer_group).", 30, "disjunction"),
        ("not case_beneficial_response.", 1, "negation ('not')"),
        ("{case_beneficial_response}.", 1, "choice"),
        ("case_history_months(0, 1+2).", 25, "arithmetic"),
        ("case_history_months(0, 2*3).", 25, "arithmetic"),
        ("case_history_months(0, 3.5).", 25, "decimal"),
        ("case_history_months(0, 1a).", 24, "neither an integer nor a constant"),
        ("case_specialty(@f(x)).", 16, "operator"),
        ("case_specialty(x) : y.", 19, "condition"),
        ("case_specialty(x').", 17, "prime"),
        ("case_beneficial_response().", 26, "empty parentheses"),
        ("case_history(0, methotrexate failure).", 30, "expected ',' or ')'"),
        ("case_plan(employer_group) case_beneficial_response.", 27, "expected '.'"),
        ("_case_plan(employer_group).", 1, "variable"),
        ("Case_plan(employer_group).", 1, "variable"),
        ('"case_plan".', 1, "only facts"),
        ("case_plan(employer_group)..", 27, "only facts"),
    ],
)
def test_other_syntax_is_refused_with_what_is_allowed(text, column, words):
    err = assert_refused(text, 1, column, words)
    assert "not allowed" in err.message or "expected" in err.message or "neither" in err.message


# --- integers -----------------------------------------------------------------------------------


def test_integer_beyond_32_bits_is_refused_not_wrapped():
    err = assert_refused(b"case_history_months(0, 4294967299).", 1, 24, "4294967299", "0..1200")
    assert "out of range" in err.message
    assert_refused(b"case_count(4294967299).", 1, 12, "4294967299", "0..2147483647")
    assert read(b"case_count(2147483647).")[0].args == (2147483647,)
    assert_refused(b"case_count(2147483648).", 1, 12, "out of range")


def test_integer_with_too_many_digits_is_refused_before_conversion():
    assert_refused(b"case_count(12345678901).", 1, 12, "11 digits")
    assert_refused(b"case_count(" + b"9" * 5000 + b").", 1, 12, "5000 digits")  # int() would raise ValueError


def test_leading_zeros_are_refused():
    assert_refused(b"case_history_months(0, 007).", 1, 24, "leading zeros")
    assert_refused(b"case_history_sample(00).", 1, 21, "leading zeros")
    assert read(b"case_history_sample(0).")[0].args == (0,)


def test_index_range_is_checked():
    assert_refused(b"case_history_sample(1000).", 1, 21, "1000", "an entry number", "0..999")


def test_integer_where_a_key_is_expected_and_the_reverse():
    assert_refused(b"case_history(0, 5, failure).", 1, 17, "a drug key", "integer 5")
    assert_refused(b"case_history_sample(one).", 1, 21, "an entry number", "not one")
    assert_refused(b'case_history_sample("1").', 1, 21, "an entry number")


# --- vocabulary ---------------------------------------------------------------------------------


def test_unknown_predicate_lists_known_ones_and_suggests():
    err = assert_refused(b"case_plan(employer_group).\ncase_indicaton(sjia).", 2, 1, "unknown case fact case_indicaton/1", "did you mean 'case_indication'")
    known = err.message.split("expected one of ")[1].split(";")[0].split(", ")
    assert known == sorted(known) and "case_history/3" in known and "case_beneficial_response/0" in known
    assert "did you mean" not in refused(b"zzz.").message


def test_wrong_arity_is_refused():
    err = assert_refused(b"case_history(0, methotrexate).", 1, 1, "unknown case fact case_history/2", "case_history/3")
    assert "did you mean 'case_history/3'" in err.message
    assert_refused(b"case_beneficial_response(yes).", 1, 1, "case_beneficial_response/1")


def test_unknown_key_is_refused_with_suggestion():
    err = assert_refused(b"case_indication(rheumatoid_arthritus).", 1, 17, "'rheumatoid_arthritus' is not an indication key", "did you mean 'rheumatoid_arthritis'")
    assert "rheumatoid_arthritis, sjia" in err.message
    assert_refused(b"case_history(0, methotrexat, failure).", 1, 17, "a drug key", "did you mean 'methotrexate'", "quoted")


def test_closed_key_may_not_be_written_as_a_string():
    assert_refused(b'case_plan("employer_group").', 1, 11, "constant", "employer_group")
    assert_refused(b'case_history(0, methotrexate, "failure").', 1, 31, "an outcome key", "constant")


def test_open_key_accepts_a_string():
    facts = read(b'case_history(0, "Otezla (apremilast)", failure).\ncase_history(1, leflunomide, failure).')
    assert facts[0].args == (0, "Otezla (apremilast)", "failure") and facts[0].quoted == (False, True, False)
    assert facts[1].quoted == (False, False, False)
    assert_refused(b'case_history(0, "' + b"x" * 201 + b'", failure).', 1, 17, "at most 200")
    assert read(b'case_history(0, "' + b"x" * 200 + b'", failure).')


def test_name_arguments_must_be_quoted_names():
    assert read(b'case_genetic_test(1, "NLRP3.v2-b_1", negative).')[0].args[1] == "NLRP3.v2-b_1"
    assert_refused(b'case_genetic_test(0, "IL 1", negative).', 1, 22, "a gene name")
    assert_refused(b'case_genetic_test(0, "-IL1", negative).', 1, 22, "a gene name")
    assert_refused(b'case_genetic_test(0, "' + b"A" * 65 + b'", negative).', 1, 22, "64")
    assert_refused(b"case_genetic_test(0, il1rn, negative).", 1, 22, "quoted string")


def test_string_arguments_are_bounded():
    assert read(b'case_note("").')[0].args == ("",)
    assert_refused(b'case_note("' + b"n" * 201 + b'").', 1, 11, "at most 200")
    assert_refused(b"case_note(plain).", 1, 11, "quoted string")


def test_the_first_problem_is_reported():
    assert_refused(b'case_plan(nope).\n-x.\n#include "y".', 1, 11, "nope")
    assert_refused(b"case_plan(employer_group).\nzzz(X).\ncase_plan(nope).", 2, 5, "variable")


# --- unterminated things ------------------------------------------------------------------------


def test_unterminated_string_is_refused():
    assert_refused(b'case_plan(employer_group).\ncase_note("abc', 2, 11, "unterminated string")
    assert_refused(b'case_note("abc\\', 1, 11, "unterminated string")


def test_unknown_escape_is_refused():
    assert_refused(b'case_note("a\\tb").', 1, 13, "unknown escape", "\\t")


def test_unterminated_block_comment_is_refused():
    assert_refused(b"case_plan(employer_group).\n  %* never closed\ncase_beneficial_response.", 2, 3, "unterminated block comment")
    assert_refused(b"case_history(0, %* x", 1, 17, "unterminated block comment")
    assert_refused(b"case_plan(employer_group) %*", 1, 27, "unterminated block comment")


def test_percent_inside_a_block_comment_is_refused():
    # clingo nests "%*" and reads "%" as a line comment inside a block comment: refuse what it would read differently
    assert_refused(b"%* %* *% case_beneficial_response. *%", 1, 4, "'%' inside a block comment")
    assert_refused(b"%* dose cut by 50% *%\ncase_beneficial_response.", 1, 18, "'%' inside a block comment")
    assert_refused(b"%*%\n*% case_beneficial_response.", 1, 3, "'%' inside a block comment")
    assert read(b"%**% %* a ** b *%case_beneficial_response.")[0].column == 18


def test_missing_final_period_at_end_of_file():
    assert_refused(b"case_plan(employer_group).\ncase_beneficial_response", 2, 25, "missing '.'")
    assert_refused(b"case_history_months(0, 3)  % no period\n\n", 1, 26, "missing '.'")
    assert_refused(b"case_history(0, methotrexate", 1, 29, "ends before ')'")


# --- limits and speed ---------------------------------------------------------------------------


def test_too_many_facts_is_refused_where_the_limit_is_crossed():
    data = b"case_beneficial_response.\n" * 5
    assert len(read(data, max_facts=5)) == 1  # duplicates count as statements, are returned once
    assert_refused(data + b"case_plan(employer_group).", 6, 1, "more than 5 facts", max_facts=5)


@pytest.mark.slow
def test_a_flood_of_facts_is_refused_fast():
    flood = b"case_count(123456).\n" * 100_000  # 100,000 facts of 20 bytes
    assert len(flood) == 2_000_000
    start = time.perf_counter()
    err = refused(flood)
    assert time.perf_counter() - start < 0.2 and "bytes" in err.message
    start = time.perf_counter()
    err = refused(flood, max_bytes=10**8)
    assert time.perf_counter() - start < 0.5
    assert (err.line, err.column) == (10_001, 1) and "more than 10000 facts" in err.message


@pytest.mark.slow
def test_a_valid_megabyte_is_parsed_fast():
    lines, size, i = [], 0, 0
    while True:
        line = f'case_history({i % 1000}, "drug number {i}", failure).  % entry {i}\n'.encode()
        if size + len(line) > MAX_LP_BYTES:
            break
        lines.append(line)
        size += len(line)
        i += 1
    data = b"".join(lines)
    start = time.perf_counter()
    facts = read_lp_facts(data, SCHEMA, max_facts=100_000)
    assert time.perf_counter() - start < 1.5
    assert len(facts) == i and len(data) > 990_000
    assert (facts[-1].line, facts[-1].args[1]) == (i, f"drug number {i - 1}")


# --- files --------------------------------------------------------------------------------------


def test_read_lp_file_reads_a_case(tmp_path):
    path = tmp_path / "case.lp"
    path.write_bytes(EXAMPLE)
    assert read_lp_file(path, SCHEMA) == read(EXAMPLE)
    assert read_lp_file(str(path), SCHEMA)[0].predicate == "case_indication"


def test_read_lp_file_refuses_a_huge_file_without_reading_it(tmp_path):
    path = tmp_path / "huge.lp"
    with open(path, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB of NULs on paper, nothing on disk
    start = time.perf_counter()
    with pytest.raises(LpFactError) as info:
        read_lp_file(path, SCHEMA)
    assert time.perf_counter() - start < 0.1
    assert "52428800 bytes" in info.value.message and (info.value.line, info.value.column) == (1, 0)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_read_lp_file_bounds_its_read_when_stat_says_nothing():
    # a device reports size 0 and never ends: only max_bytes + 1 bytes may be read
    start = time.perf_counter()
    with pytest.raises(LpFactError) as info:
        read_lp_file("/dev/zero", SCHEMA, max_bytes=1000)
    assert time.perf_counter() - start < 0.5
    assert "1001 bytes" in info.value.message


def test_read_lp_file_lets_os_errors_through(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_lp_file(tmp_path / "missing.lp", SCHEMA)


# --- the error and the schema -------------------------------------------------------------------


def test_errors_pickle_and_print_with_their_place():
    err = refused(b"\ncase_plan(nope).")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.line, copy.column, copy.message) == (err.line, err.column, err.message)
    assert str(err).startswith("2:11: ")


def test_argspec_kind_is_checked():
    with pytest.raises(ValueError):
        ArgSpec("keys")


def test_text_is_refused_bytes_are_required():
    with pytest.raises(TypeError):
        read_lp_facts("case_beneficial_response.", SCHEMA)  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_nothing_but_lp_fact_errors(data):
    try:
        facts = read_lp_facts(data, SCHEMA)
    except LpFactError as err:
        assert err.line >= 1 and err.column >= 0 and err.message
    else:
        assert all(isinstance(f, LpFact) for f in facts)


FRAGMENTS = [
    "case_history",
    "case_plan",
    "case_note",
    "case_count",
    "(",
    ")",
    ",",
    ".",
    " ",
    "\n",
    "\r\n",
    "\t",
    "%",
    "%*",
    "*%",
    '"',
    "\\",
    "\\n",
    "-",
    "#include",
    ":-",
    "..",
    ";",
    "X",
    "_",
    "0",
    "007",
    "4294967299",
    "methotrexate",
    "employer_group",
    "é",
    "f(",
    "not ",
    "{",
    "}",
    "'",
    "\x00",
    "\xff",
    "9" * 30,
]


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40))
def test_token_soup_raises_nothing_but_lp_fact_errors(parts):
    data = "".join(parts).encode("utf-8", "surrogatepass")
    try:
        read_lp_facts(data, SCHEMA)
    except LpFactError as err:
        assert err.line >= 1 and err.column >= 0


_ints = st.integers(min_value=0, max_value=999)
_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30).filter(lambda t: t not in DRUGS | OUTCOMES)  # _write leaves those bare
_facts = st.one_of(
    # free text in the drug's place is any string but an outcome key, which _write would leave bare (not a drug)
    st.tuples(st.just("case_history"), _ints, st.one_of(st.sampled_from(sorted(DRUGS)), _text.filter(lambda t: t not in OUTCOMES)), st.sampled_from(sorted(OUTCOMES))),
    st.tuples(st.just("case_history_months"), _ints, st.integers(min_value=0, max_value=1200)),
    st.tuples(st.just("case_note"), _text),
    st.tuples(st.just("case_beneficial_response")),
)


def _write(value) -> str:
    if isinstance(value, int):
        return str(value)
    if value in DRUGS or value in OUTCOMES:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(_facts, max_size=15), st.sampled_from([" ", "\n", "\r\n", " %* c\n *% ", " % c\n"]))
def test_written_facts_read_back_as_written(facts, gap):
    text = gap.join(f"{f[0]}({', '.join(_write(a) for a in f[1:])})." if len(f) > 1 else f"{f[0]}." for f in facts)
    got = read_lp_facts(text.encode(), SCHEMA)
    expected = list(dict.fromkeys((f[0], tuple(f[1:]), tuple(not isinstance(a, int) and a not in DRUGS | OUTCOMES for a in f[1:])) for f in facts))
    assert [(g.predicate, g.args, g.quoted) for g in got] == expected
