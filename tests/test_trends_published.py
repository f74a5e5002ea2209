import pytest

from analysis.trends import doubling
from analysis.trends.published import PUBLISHED, months_from_growth


def test_months_from_growth():
    assert months_from_growth(2.0) == pytest.approx(12.0)
    assert months_from_growth(4.0) == pytest.approx(6.0)
    assert months_from_growth(1.30) == pytest.approx(31.70, abs=0.01)  # Epoch: +30% per year


def test_every_comparator_is_cited_and_inside_its_own_interval():
    for key, ref in PUBLISHED.items():
        assert ref.citation and ref.what and ref.months > 0, key
        if ref.ci is not None:
            assert ref.ci[0] < ref.months < ref.ci[1], key


def test_each_hardware_comparator_is_for_its_own_number_format():
    # Issue 14.4: a series is compared with a published trend in the same format, never a mixture.
    formats = {"hardware_flops": "FP32", "hardware_flops_per_dollar": "FP32", "hardware_flops_tensor16": "16-bit",
               "hardware_flops_per_dollar_tensor16": "fixed number format"}
    for key, fmt in formats.items():
        assert fmt in PUBLISHED[key].what, key
    assert not any("fastest" in ref.what for ref in PUBLISHED.values())
    # Only the formats fitted from data have comparators; FP8 has no published trend, so none is invented.
    suffixes = {suffix for suffix, _ in doubling.FORMAT_LABELS.values()}
    hardware_keys = {k for k in PUBLISHED if k.startswith("hardware_")}
    assert hardware_keys <= {f"hardware_flops{p}{s}" for p in ("", "_per_dollar") for s in suffixes}
    assert not any(k.endswith("_fp8") for k in PUBLISHED)
