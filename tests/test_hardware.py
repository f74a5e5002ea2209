import json

from conftest import run_python
from scaling import hardware


def test_versions_and_device_facts():
    versions = hardware.versions()
    assert versions["jax"][0].isdigit() and versions["flax"][0].isdigit()
    facts = hardware.device_facts()
    assert facts["backend"] == "cpu" and facts["n_devices"] >= 1 and facts["device_kind"]


def test_measured_peak_is_cached_per_device_kind(tmp_path, monkeypatch):
    calls = []

    def fake_measure(dtype_name):
        calls.append(dtype_name)
        return 5e10

    monkeypatch.setattr(hardware, "measure_matmul_flops", fake_measure)
    assert hardware.peak_flops("float32", tmp_path) == 5e10
    assert hardware.peak_flops("float32", tmp_path) == 5e10
    assert calls == ["float32"]
    table = json.loads((tmp_path / "peak_flops.json").read_text())
    assert list(table.values()) == [5e10]


def test_matmul_measurement_is_plausible():
    flops = hardware.measure_matmul_flops("float32", size=256, repeats=2)
    assert 1e8 < flops < 1e15


def test_compilation_cache_is_configured_unless_disabled(tmp_path):
    code = (f"import jax; from pathlib import Path; from scaling import hardware; "
            f"hardware.enable_compilation_cache(Path({str(tmp_path)!r})); print(jax.config.jax_compilation_cache_dir)")
    assert run_python(code).stdout.strip() == str(tmp_path / "xla")
    disabled = run_python("import os; os.environ['SCALING_COMPILATION_CACHE'] = '0'; " + code)
    assert disabled.stdout.strip() == "None"


def test_host_devices_one_per_cpu_dividing_the_micro_batch():
    assert hardware.host_devices_for(16, cpus=2) == 2
    assert hardware.host_devices_for(15, cpus=2) == 1  # 2 does not divide 15
    assert hardware.host_devices_for(12, cpus=8) == 6
    assert hardware.host_devices_for(64, cpus=64) == hardware.MAX_HOST_DEVICES
    assert hardware.host_devices_for(16, cpus=2, requested=1) == 1
    assert hardware.host_devices_for(16, cpus=2, requested=4) == 4  # asked for: more devices than CPUs
    assert hardware.host_devices_for(2, cpus=8) == 2


def test_machine_facts_for_benchmarks():
    facts = hardware.machine_facts()
    assert facts["nproc"] >= 1 and len(facts["load_average_at_start"]) == 3 and facts["python"].count(".") == 2
