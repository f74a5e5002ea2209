import json
import os
import subprocess
import sys

from scaling import xla_defaults
from conftest import PROJECT_ROOT


def test_flags_added_only_for_their_jaxlib_series_and_not_twice():
    cpu, gpu = "--xla_cpu_experimental_ynn_fusion_type=", "--xla_gpu_enable_triton_gemm=false"
    assert xla_defaults.flags_to_add("", "0.10.2") == [cpu, gpu]
    assert xla_defaults.flags_to_add("--xla_force_host_platform_device_count=2", "0.10.0") == [cpu, gpu]
    # The user's own setting wins; a jaxlib outside a flag's series does not get it (an unknown flag
    # aborts XLA).
    assert xla_defaults.flags_to_add("--xla_cpu_experimental_ynn_fusion_type=dot", "0.10.2") == [gpu]
    assert xla_defaults.flags_to_add("--xla_gpu_enable_triton_gemm=true", "0.11.2") == []
    assert xla_defaults.flags_to_add("", "0.11.0") == [gpu]
    assert xla_defaults.flags_to_add("", "0.12.0") == []
    assert xla_defaults.flags_to_add("", None) == []


def run_fresh(code: str, env_extra: dict) -> dict:
    """Run `code` in a fresh interpreter (no XLA_FLAGS of ours) and parse the JSON it prints last."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "SCALING_XLA_DEFAULTS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env={**env, "JAX_PLATFORMS": "cpu", **env_extra}, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def xla_flags_after_cli(env_extra: dict) -> dict:
    """XLA_FLAGS, and the devices JAX then sees, after the `scaling` entry point ran (bare: help, exit 2)."""
    code = ("import contextlib, io, os, json, jax; from scaling_cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()): main([])\n"
            "jax.devices(); "
            "print(json.dumps({'flags': os.environ.get('XLA_FLAGS', ''), 'devices': jax.device_count()}))")
    return run_fresh(code, env_extra)


def test_the_cli_applies_the_defaults_and_keeps_the_users_flags():
    expected = xla_defaults.flags_to_add("", xla_defaults.metadata.version("jaxlib"))
    out = xla_flags_after_cli({"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert out["devices"] == 2
    assert out["flags"].split() == ["--xla_force_host_platform_device_count=2", *expected]


def test_defaults_can_be_turned_off():
    out = xla_flags_after_cli({"SCALING_XLA_DEFAULTS": "0"})
    assert out["flags"] == ""


def test_importing_scaling_changes_no_process_setting():
    """Neither XLA_FLAGS nor the umask (not even set and restored: another thread may create a file meanwhile)."""
    code = ("import os, json; calls = []; real = os.umask; "
            "os.umask = lambda mask: calls.append(mask) or real(mask); "
            "import scaling.errors, scaling.io, scaling.config; "
            "print(json.dumps({'flags': os.environ.get('XLA_FLAGS', ''), 'umask_calls': calls}))")
    out = run_fresh(code, {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert out == {"flags": "--xla_force_host_platform_device_count=2", "umask_calls": []}
