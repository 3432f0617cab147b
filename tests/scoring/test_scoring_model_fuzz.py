"""Any model text ends as a model or a clean ModelError: never another exception, never a hang."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapping.model import Contact
from scoring import DEFAULT_MODEL_PATH, ModelError, ScoringModel, load_model, loads_model, score

NOW = datetime(2026, 5, 1, tzinfo=UTC)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEFAULT_LINES = DEFAULT_MODEL_PATH.read_text(encoding="utf-8").splitlines()

_scalars = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str), st.floats(allow_nan=True).map(repr),
    st.booleans().map(lambda b: str(b).lower()), st.text(max_size=12).map(lambda t: '"' + t.replace('"', "") + '"'),
    st.sampled_from(["'(a+)+$'", "'a{4294967296}'", "'['", "'\\1'", "[]", "{}", "nan", "inf", '""', "1e309"]),
)


def _loaded_or_model_error(text: str) -> None:
    try:
        model = loads_model(text, "fuzz.toml")
    except ModelError as exc:
        assert str(exc).startswith("fuzz.toml"), exc
        return
    assert isinstance(model, ScoringModel)
    score(model, Contact(source="hubspot", id="1", title="a" * 40 + "!", company_size=50), [], NOW)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_is_a_model_or_a_model_error(text):
    _loaded_or_model_error(text)


@FUZZ
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(DEFAULT_LINES) - 1), _scalars), max_size=4))
def test_the_default_model_with_mutated_values_is_a_model_or_a_model_error(edits):
    lines = list(DEFAULT_LINES)
    for index, value in edits:
        key, sep, _ = lines[index].partition("=")
        if sep and not key.lstrip().startswith("#"):
            lines[index] = f"{key}= {value}"
    _loaded_or_model_error("\n".join(lines))


@pytest.mark.parametrize("body", [b"\xff\xfe[stages]\n", "name = 'caf\u00e9'\n".encode("latin-1")])
def test_a_model_file_that_is_not_utf8_is_a_model_error_naming_the_file(tmp_path, body):
    path = tmp_path / "team.toml"
    path.write_bytes(body)
    with pytest.raises(ModelError, match=rf"^{path}: .*UTF-8"):
        load_model(path)
