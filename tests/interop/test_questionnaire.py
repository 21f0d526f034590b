"""The adaptive questionnaire: one question at a time, from the KB, until the decision is reached."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kineret_asp import load_kb
from kineret_asp.cases.changes import change_list
from kineret_asp.cases.load import load
from kineret_asp.explain.missing import missing
from kineret_asp.interop.questionnaire import DECIDED, NONE_CODE, answer_step, next_step
from kineret_asp.knowledge.fhir_mapping import mapping_for
from kineret_asp.server import create_app

from ..conftest import KB_DIR

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(load_kb(KB_DIR), time_limit=60))


def play(kb, wanted: dict, state: dict | None = None, limit: int = 12):
    """Answer each question with the option the wanted case has (else the first), recording the dialogue."""
    state = dict(state or {})
    declined: list = []
    asked = []
    for _ in range(limit):
        step = next_step(state, declined, kb)
        if step.status == DECIDED:
            return step, asked
        q = step.question
        pick = next((o for o in q.options if q.field and o.code == wanted.get(q.field)), q.options[0])
        asked.append((dict(state), list(declined), q, pick))
        state = answer_step(state, [c.to_dict() for c in pick.changes], kb)
    raise AssertionError("the dialogue did not end")


@pytest.mark.slow  # a whole dialogue, what is missing computed at each step; the fast lane keeps the Still's disease dialogue
def test_a_rheumatoid_arthritis_dialogue_from_nothing_to_approval():
    kb = load_kb(KB_DIR)
    step, asked = play(kb, {"indication": "rheumatoid_arthritis", "plan": "employer_group"})
    assert step.status == DECIDED and step.decision.decision == "approved"
    fields = [q.field for _, _, q, _ in asked]
    assert fields[:2] == ["indication", "plan"]
    texts = [q.text for _, _, q, _ in asked]
    assert texts[0] == dict((str(f), str(t)) for f, t in kb.facts("question", 2))["indication"]  # the KB's words
    assert any("a rheumatologist" in t for t in texts)
    assert step.case["prescriber_specialties"] == ["rheumatology"]
    assert len(asked) <= 8


def landscape(state: dict, declined: list, kb) -> tuple:
    """The decision and every way left to approval (smallest options without the declined changes)."""
    from kineret_asp.interop.questionnaire import _code, _remaining

    result = missing(load(state, kb, shown="<test>").case, kb)
    codes = {_code([c]) for c in change_list(declined)}
    return (result.decision.decision, sorted(tuple(sorted(_code(alts) for _, alts in option)) for option in _remaining(result, codes)))


@pytest.mark.slow  # every answer of every question of a whole dialogue, each with what is missing after it
def test_no_question_is_asked_whose_answer_cannot_change_the_outcome():
    """For every question of the dialogue, its answers lead to different decisions or different ways to approval."""
    kb = load_kb(KB_DIR)
    _, asked = play(kb, {"indication": "rheumatoid_arthritis", "plan": "employer_group"})
    assert len(asked) >= 5
    for state, declined, q, _ in asked:
        if q.field == "indication":
            continue  # a required field: no case exists without it
        answers = [landscape(answer_step(state, [c.to_dict() for c in o.changes], kb), declined, kb) for o in q.options[:4]]
        if q.declinable:
            answers.append(landscape(state, declined + [c.to_dict() for o in q.options for c in o.changes], kb))
        else:
            answers.append(landscape(state, declined, kb))
        assert len(set(map(repr, answers))) > 1, q.text


def test_a_field_that_cannot_change_the_outcome_is_never_asked():
    kb = load_kb(KB_DIR)
    step, asked = play(kb, {"indication": "stills_disease"})
    assert step.decision.decision == "approved"
    assert "plan" not in [q.field for _, _, q, _ in asked]
    assert [q.field for _, _, q, _ in asked] == ["indication", None]


def test_declining_every_option_ends_with_the_decision():
    kb = load_kb(KB_DIR)
    state = {"indication": "stills_disease"}
    step = next_step(state, [], kb)
    declined = [c.to_dict() for o in step.question.options for c in o.changes]
    done = next_step(state, declined, kb)
    assert done.status == DECIDED and done.decision.decision == "criteria_not_met"


def test_a_use_no_documentation_can_help_is_decided_at_once():
    step = next_step({"indication": "osteoarthritis"}, [], load_kb(KB_DIR))
    assert step.status == DECIDED and step.decision.decision == "not_covered"


def test_the_json_twin_over_http(client):
    state: dict = {}
    for _ in range(12):
        body = client.post("/questionnaire/next", json={"case": state, "declined": []}).json()
        if body["status"] == DECIDED:
            break
        q = body["question"]
        option = next((o for o in q["options"] if o["code"] in ("sjia", "rheumatology")), q["options"][0])
        state = answer_step(state, option["changes"], load_kb(KB_DIR))
    assert body["status"] == DECIDED and body["decision"]["decision"] == "approved" and body["case"]["indication"] == "sjia"
    assert client.post("/questionnaire/next", json={"case": "x"}).status_code == 422


def test_next_question_on_a_questionnaire_response(client):
    """$next-question: QuestionnaireResponse with a contained Questionnaire in, one more question out, until completed."""
    kb = load_kb(KB_DIR)
    system = mapping_for(kb).change_system
    qr: dict = {"resourceType": "QuestionnaireResponse", "status": "in-progress"}
    for n in range(12):
        response = client.post("/Questionnaire/$next-question", json={"resourceType": "Parameters", "parameter": [{"name": "in", "resource": qr}]})
        assert response.status_code == 200, response.text
        out = response.json()
        assert out["resourceType"] == "Parameters" and out["parameter"][0]["name"] == "return"
        qr = out["parameter"][0]["resource"]
        questionnaire = qr["contained"][0]
        assert qr["questionnaire"] == "#" + questionnaire["id"] and questionnaire["resourceType"] == "Questionnaire"
        item = questionnaire["item"][-1]
        if qr["status"] == "completed":
            assert item["type"] == "display" and "APPROVED" in item["text"]
            break
        assert len(questionnaire["item"]) == n + 1 and item["type"] == "choice"
        codings = [o["valueCoding"] for o in item["answerOption"]]
        if item["linkId"] == "issue-pa":  # the criteria are met: the last question offers the prior-authorization number
            pick = next(c for c in codings if c["code"] == "not-now")
        else:
            assert all(c["system"] == system for c in codings)
            pick = next((c for c in codings if '"stills_disease"' in c["code"] or '"rheumatology"' in c["code"]), codings[0])
        qr.setdefault("item", []).append({"linkId": item["linkId"], "text": item["text"], "answer": [{"valueCoding": pick}]})
    else:
        raise AssertionError("no decision")
    assert [i["linkId"] for i in qr["item"]] == ["q1", "q2", "issue-pa"]


def test_next_question_accepts_a_bare_questionnaire_response_and_a_none_answer(client):
    kb = load_kb(KB_DIR)
    system = mapping_for(kb).change_system
    qr = client.post("/Questionnaire/$next-question", json={"resourceType": "QuestionnaireResponse", "status": "in-progress"}).json()
    first = qr["contained"][0]["item"][0]
    stills = next(o["valueCoding"] for o in first["answerOption"] if '"stills_disease"' in o["valueCoding"]["code"])
    qr["item"] = [{"linkId": "q1", "answer": [{"valueCoding": stills}]}]
    qr = client.post("/Questionnaire/$next-question", json=qr).json()
    qr["item"].append({"linkId": "q2", "answer": [{"valueCoding": {"system": system, "code": NONE_CODE}}]})
    done = client.post("/Questionnaire/$next-question", json=qr).json()
    assert done["status"] == "completed" and "CRITERIA NOT MET" in done["contained"][0]["item"][-1]["text"]
    bad = dict(qr, item=[{"linkId": "q1", "answer": [{"valueCoding": {"system": "x", "code": "y"}}]}])
    refused = client.post("/Questionnaire/$next-question", json=bad)
    assert refused.status_code == 400 and refused.json()["resourceType"] == "OperationOutcome"


def test_an_undetermined_drug_is_asked_about_until_it_is_settled():
    """Its discontinuation is offered first; declined, its category is asked; either answer approves."""
    kb = load_kb(KB_DIR)
    state = {"indication": "sjia", "prescriber_specialties": ["rheumatology"], "current_medications": ["zorbitrex"]}
    first = next_step(state, [], kb)
    assert first.status != DECIDED and "zorbitrex" in first.question.text
    declined = [c.to_dict() for o in first.question.options for c in o.changes]
    second = next_step(state, declined, kb)
    assert second.status != DECIDED and "zorbitrex" in second.question.text and second.question.text != first.question.text
    for step in (first, second):
        pick = next(o for o in step.question.options if o.code != NONE_CODE)
        after = answer_step(state, [c.to_dict() for c in pick.changes], kb)
        assert next_step(after, [], kb).decision.decision == "approved"


def test_an_undetermined_indication_is_asked_and_the_answer_settles_it():
    kb = load_kb(KB_DIR)
    state = {"undetermined": [{"field": "indication", "why": "two conditions name it differently"}], "prescriber_specialties": ["rheumatology"]}
    step = next_step(state, [], kb)
    assert step.question.field == "indication"
    pick = next(o for o in step.question.options if o.code == "sjia")
    after = answer_step(state, [c.to_dict() for c in pick.changes], kb)
    assert after["undetermined"] == [] and next_step(after, [], kb).decision.decision == "approved"
