"""The SOQL parser on its own: the subset it accepts, and the errors it points at."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sandbox.salesforce.soql import BoolOp, Compare, InList, Not, SoqlError, caret_message, parse


def test_select_list_with_relationship_fields_order_and_limit() -> None:
    q = parse("SELECT Id, Owner.Name, Account.Type FROM Contact ORDER BY LastName DESC NULLS LAST, Id LIMIT 5")
    assert [f.text for f in q.fields] == ["Id", "Owner.Name", "Account.Type"]
    assert q.sobject == "Contact" and q.limit == 5 and not q.count
    assert [(k.field.text, k.descending, k.nulls_last) for k in q.order] == [("LastName", True, True),
                                                                           ("Id", False, False)]


def test_count_and_case_insensitive_keywords() -> None:
    q = parse("select count() from Lead where IsConverted = FALSE")
    assert q.count and q.fields == ()
    assert isinstance(q.where, Compare) and q.where.value.value is False


@pytest.mark.parametrize("literal", ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05+00:00",
                                     "2024-01-02T03:04:05.000+0000", "2024-01-02T04:04:05+01:00"])
def test_datetime_literal_forms(literal: str) -> None:
    q = parse(f"SELECT Id FROM Lead WHERE SystemModstamp >= {literal}")
    assert isinstance(q.where, Compare)
    assert q.where.value.value == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_boolean_structure_with_parentheses_not_in_like_and_null() -> None:
    q = parse("SELECT Id FROM Lead WHERE (Industry IN ('Retail','Media') OR Email LIKE '%\\_x%') "
              "AND NOT Country NOT IN ('Brazil') AND Title != null AND ConvertedDate < 2024-03-01")
    assert isinstance(q.where, BoolOp) and q.where.op == "AND" and len(q.where.items) == 4
    inner = q.where.items[0]
    assert isinstance(inner, BoolOp) and inner.op == "OR"
    assert isinstance(inner.items[0], InList) and [v.value for v in inner.items[0].values] == ["Retail", "Media"]
    assert isinstance(q.where.items[1], Not) and isinstance(q.where.items[1].item, InList)
    assert q.where.items[1].item.negate
    title = q.where.items[2]
    assert isinstance(title, Compare) and title.op == "!=" and title.value.kind == "null"
    converted = q.where.items[3]
    assert isinstance(converted, Compare) and converted.value.value == date(2024, 3, 1)


def test_string_escapes() -> None:
    q = parse("SELECT Id FROM Lead WHERE LastName = 'O\\'Brien'")
    assert isinstance(q.where, Compare) and q.where.value.value == "O'Brien"


@pytest.mark.parametrize(("soql", "token"), [
    ("SELECT Id FROM Lead WHERE A = 1 AND B = 2 OR C = 3", "OR"),  # SOQL needs parentheses here
    ("SELECT Id FROM Lead WHERE", "<EOF>"),
    ("SELECT FROM Lead", "FROM"),
    ("SELECT Id Lead", "Lead"),
    ("SELECT Id FROM Lead LIMIT x", "x"),
])
def test_malformed_queries_name_the_token(soql: str, token: str) -> None:
    with pytest.raises(SoqlError) as err:
        parse(soql)
    assert err.value.code == "MALFORMED_QUERY"
    assert err.value.message == f"unexpected token: '{token}'"


def test_caret_message_points_at_the_column() -> None:
    text = "SELECT Id FROM Lead WHERE Name = 1 AND B = 2 OR C = 3"
    with pytest.raises(SoqlError) as err:
        parse(text)
    msg = caret_message(text, err.value)
    col = text.index(" OR ") + 2
    assert msg == f"\n{text}\n{' ' * (col - 1)}^\nERROR at Row:1:Column:{col}\nunexpected token: 'OR'"
