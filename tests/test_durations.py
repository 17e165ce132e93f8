import pytest

from audiogen.routine.durations import format_ms, parse_duration, parse_gain, spoken_seconds


@pytest.mark.parametrize(
    "value, ms",
    [(45, 45000), ("45", 45000), ("45s", 45000), ("1.5s", 1500), ("500ms", 500), ("1m", 60000),
     ("1m30s", 90000), ("1:30", 90000), ("1:02:03", 3723000), (0.25, 250), ("2h", 7200000), (" 10 s ", 10000)],
)
def test_valid_durations(value, ms):
    assert parse_duration(value) == ms


@pytest.mark.parametrize("value", ["ten", "1:75", "5 minutes", "-3s", -1, "", "1m30", True, None, [1], "1:2:3:4"])
def test_invalid_durations_quote_the_value(value):
    with pytest.raises(ValueError) as e:
        parse_duration(value)
    assert repr(value) in str(e.value)


def test_gain_forms():
    assert parse_gain("-18 dB") == -18.0
    assert parse_gain("-18dB") == -18.0
    assert parse_gain(-6) == -6.0
    with pytest.raises(ValueError, match="-80 dB"):
        parse_gain("-80 dB")
    with pytest.raises(ValueError):
        parse_gain("loud")


def test_spoken_and_formatted():
    assert spoken_seconds(10000) == "Ten seconds"
    assert spoken_seconds(60000) == "One minute"
    assert spoken_seconds(90000) == "One minute thirty seconds"
    assert spoken_seconds(45000) == "Forty-five seconds"
    assert format_ms(90500) == "1:30.5"
    assert format_ms(3723000) == "1:02:03"
