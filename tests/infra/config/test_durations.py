import pytest

from infra.config.durations import go_duration, parse_duration

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text,seconds",
    [("0", 0), ("0s", 0), ("500ms", 0.5), ("15s", 15), ("1m30s", 90), ("5m", 300), ("2h", 7200), ("1.5s", 1.5)],
)
def test_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "s", "1m 30s", "-5s", "15sec", "1d"])
def test_parse_rejects(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "seconds,text", [(0, "0s"), (0.5, "500ms"), (15, "15s"), (90, "1m30s"), (300, "5m0s"), (3600, "1h0m0s")]
)
def test_canonical_go_spelling(seconds, text):
    assert go_duration(seconds) == text
    assert parse_duration(text) == seconds
