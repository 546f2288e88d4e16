"""Metric-string and quantity parsing of site templates."""

from __future__ import annotations

import pytest

from agent.templates import MetricError, MetricKind, Quantity, parse_metric, parse_quantity


@pytest.mark.parametrize(
    ("text", "kind", "volume", "volume_unit", "unit"),
    [
        ("D95%", MetricKind.DOSE_AT_VOLUME, 95.0, "%", "Gy"),
        ("D 95 %", MetricKind.DOSE_AT_VOLUME, 95.0, "%", "Gy"),
        ("d2%", MetricKind.DOSE_AT_VOLUME, 2.0, "%", "Gy"),
        ("D0.03cc", MetricKind.DOSE_AT_VOLUME, 0.03, "cm3", "Gy"),
        ("D1cm3", MetricKind.DOSE_AT_VOLUME, 1.0, "cm3", "Gy"),
        ("D95%[Gy]", MetricKind.DOSE_AT_VOLUME, 95.0, "%", "Gy"),
    ],
)
def test_dose_at_volume_metrics(
    text: str, kind: MetricKind, volume: float, volume_unit: str, unit: str
) -> None:
    m = parse_metric(text)
    assert (m.kind, m.volume, m.volume_unit, m.unit) == (kind, volume, volume_unit, unit)
    assert m.text == text.strip()


@pytest.mark.parametrize(
    ("text", "dose", "dose_unit", "unit", "level_at_rx_80"),
    [
        ("V70Gy", 70.0, "Gy", "%", 70.0),
        ("V 70 Gy", 70.0, "Gy", "%", 70.0),
        ("V7000cGy", 70.0, "Gy", "%", 70.0),
        ("V95%Rx", 0.95, "Rx", "%", 76.0),  # 0.95 x 80 Gy, hand-computed
        ("V12Gy[cc]", 12.0, "Gy", "cm3", 12.0),
        ("V12Gy[%]", 12.0, "Gy", "%", 12.0),
    ],
)
def test_volume_at_dose_metrics(
    text: str, dose: float, dose_unit: str, unit: str, level_at_rx_80: float
) -> None:
    m = parse_metric(text)
    assert m.kind is MetricKind.VOLUME_AT_DOSE
    assert m.dose == pytest.approx(dose, abs=1e-12)
    assert (m.dose_unit, m.unit) == (dose_unit, unit)
    assert m.dose_level_gy(80.0) == pytest.approx(level_at_rx_80, abs=1e-9)


@pytest.mark.parametrize(
    ("text", "kind", "unit"),
    [
        ("Mean", MetricKind.MEAN, "Gy"),
        ("Dmean", MetricKind.MEAN, "Gy"),
        ("Max", MetricKind.MAX, "Gy"),
        ("min[Gy]", MetricKind.MIN, "Gy"),
        ("CI_paddick", MetricKind.CI_PADDICK, ""),
        ("CI_RTOG", MetricKind.CI_RTOG, ""),
        ("HI", MetricKind.HI, ""),
        ("GI", MetricKind.GI, ""),
    ],
)
def test_named_metrics(text: str, kind: MetricKind, unit: str) -> None:
    m = parse_metric(text)
    assert (m.kind, m.unit) == (kind, unit)
    assert m.is_index == (unit == "")
    assert m.needs_body == (kind in (MetricKind.CI_PADDICK, MetricKind.CI_RTOG, MetricKind.GI))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("D95", "missing volume unit"),
        ("V-5Gy", "must be >= 0"),
        ("V70mGy", "unknown dose unit"),
        ("V95%", "ambiguous dose unit"),
        ("V95", "ambiguous dose unit"),
        ("D95xx", "unknown metric"),
        ("D101%", "within 0..100"),
        ("D-1cc", "must be >= 0"),
        ("V20Gy[Gy]", "not allowed"),
        ("HI[%]", "no unit"),
        ("Median", "unknown metric"),
        ("", "non-empty"),
    ],
)
def test_invalid_metrics(text: str, reason: str) -> None:
    with pytest.raises(MetricError, match=reason):
        parse_metric(text)


@pytest.mark.parametrize(
    ("raw", "value", "unit"),
    [
        (45, 45.0, ""),
        ("45 Gy", 45.0, "Gy"),
        ("4500cGy", 45.0, "Gy"),
        ("1.07 Rx", 1.07, "Rx"),
        ("107 %Rx", 1.07, "Rx"),
        ("15 %", 15.0, "%"),
        ("10 cc", 10.0, "cm3"),
        ("0.5cm3", 0.5, "cm3"),
        ("1e-2", 0.01, ""),
    ],
)
def test_quantities(raw: object, value: float, unit: str) -> None:
    q = parse_quantity(raw)
    assert q.value == pytest.approx(value, rel=1e-12)
    assert q.unit == unit


@pytest.mark.parametrize("raw", ["45 Sv", "abc", "1.0.0 Gy", True, None, [1]])
def test_invalid_quantities(raw: object) -> None:
    with pytest.raises((MetricError, ValueError)):
        parse_quantity(raw)


def test_quantity_resolution_and_unit_mismatch() -> None:
    # 1.07 x 79.2 Gy = 84.744 Gy (hand-computed)
    assert Quantity(value=1.07, unit="Rx").resolve("Gy", 79.2) == pytest.approx(84.744, abs=1e-9)
    assert Quantity(value=45.0).resolve("Gy", 79.2) == 45.0  # bare number = metric unit
    assert Quantity(value=15.0, unit="%").resolve("%", 79.2) == 15.0
    assert not Quantity(value=15.0, unit="%").compatible_with("Gy")
    assert not Quantity(value=1.0, unit="Rx").compatible_with("%")
    with pytest.raises(MetricError, match="unit mismatch"):
        Quantity(value=10.0, unit="cm3").resolve("%", 79.2)
