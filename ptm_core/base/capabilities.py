"""What this machine computes natively, read in one place: the CPU's instruction sets, native bf16 on the CPU
(AVX512_BF16 or AMX) and on a GPU, and what OpenVINO's CPU plugin says it can do.

Every choice of runtime and precision asks `capabilities()`, never the CPU directly, so one environment
variable moves the whole engine onto the other branch: `PTM_NATIVE_BF16=1` makes this CPU count as one with
native bf16 (bf16 then runs emulated where it has none: slow, but every bf16 code path runs), `=0` as one
without. Tests use it to run both branches on any machine; unset, the hardware decides.
"""
from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ptm_core.base.configs import stable_hash
from ptm_core.base.errors import PTMError

OVERRIDE_ENV = "PTM_NATIVE_BF16"
# The instruction sets that decide the fast paths; recorded beside every benchmark row and calibration.
FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class Capabilities:
    cpu_name: str
    cpu_flags: tuple[str, ...]  # those of FLAGS_OF_INTEREST this CPU has
    cores: int
    cpu_bf16_detected: bool  # the hardware's answer
    cpu_bf16: bool  # what the engine acts on: the hardware's answer unless PTM_NATIVE_BF16 overrides it
    override: str | None  # "0", "1" or None
    cuda_names: tuple[str, ...] = ()
    cuda_bf16: bool = False
    mps: bool = False
    openvino_bf16_detected: bool = False  # OpenVINO's CPU plugin lists BF16 among its capabilities
    versions: dict = field(default_factory=dict, compare=False)

    def native_bf16(self, device: torch.device) -> bool:
        """Whether `device` computes bf16 in hardware (bf16 there is faster rather than emulated)."""
        if device.type == "cuda":
            return self.cuda_bf16
        return device.type == "cpu" and self.cpu_bf16

    @property
    def openvino_bf16(self) -> bool:
        """OpenVINO can run bf16 here: its plugin says so, and the CPU counts as having native bf16."""
        return self.openvino_bf16_detected and self.cpu_bf16

    def fingerprint(self) -> str:
        """Changes when the machine (or the software measuring on it) changes: calibrations are kept per value."""
        return stable_hash([self.cpu_name, self.cpu_flags, self.cores, self.cpu_bf16, self.cuda_names, self.mps,
                            self.openvino_bf16_detected, sorted(self.versions.items())])

    def describe(self) -> str:
        """One line for benchmark rows and meta, e.g. 'AMD EPYC, 2 cores (avx2 avx512f avx512_bf16)'."""
        bf16 = {None: "", "1": ", native bf16 forced on", "0": ", native bf16 forced off"}[self.override]
        gpus = f", GPU: {', '.join(self.cuda_names)}" if self.cuda_names else ""
        return f"{self.cpu_name}, {self.cores} cores ({' '.join(self.cpu_flags) or 'no AVX2'}){bf16}{gpus}"


def capabilities() -> Capabilities:
    """This machine's capabilities, with PTM_NATIVE_BF16 applied (read here and nowhere else)."""
    override = os.environ.get(OVERRIDE_ENV, "").strip() or None
    if override not in (None, "0", "1"):
        raise PTMError(f"{OVERRIDE_ENV} must be 0 or 1 (or unset to ask the hardware), got '{override}'.")
    found = _detected()
    native = found.cpu_bf16_detected if override is None else override == "1"
    return Capabilities(found.cpu_name, found.cpu_flags, found.cores, found.cpu_bf16_detected, native, override,
                        found.cuda_names, found.cuda_bf16, found.mps, found.openvino_bf16_detected, found.versions)


@functools.lru_cache(maxsize=1)
def _detected() -> Capabilities:
    flags = _cpu_flags()
    detected = _torch_cpu_bf16()
    cuda = torch.cuda.is_available()
    names = tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) if cuda else ()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    versions = {"torch": torch.__version__}
    openvino_bf16 = False
    try:
        import openvino

        versions["openvino"] = openvino.__version__
        openvino_bf16 = "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # not installed, or no CPU plugin: OpenVINO is then no candidate anyway
        pass
    return Capabilities(_cpu_name(), flags, os.cpu_count() or 1, detected, detected, None, names,
                        bool(cuda and torch.cuda.is_bf16_supported()), mps, openvino_bf16, versions)


def _torch_cpu_bf16() -> bool:
    """PyTorch's cpuinfo flags for AVX512_BF16 or AMX tiles, and oneDNN's own bf16 check (the one PyTorch's
    tests use). A build without these probes counts as no native bf16: the safe side."""
    try:
        has_instructions = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return bool(has_instructions and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cpuinfo() -> dict[str, str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    first = text.split("\n\n", 1)[0]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}


def _cpu_name() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine() or "unknown CPU"


def _cpu_flags() -> tuple[str, ...]:
    """Linux's own flag names where /proc/cpuinfo exists; elsewhere what PyTorch's dispatcher reports."""
    flags = set(_cpuinfo().get("flags", "").split())
    if not flags:
        level = torch.backends.cpu.get_cpu_capability().lower()  # 'avx512', 'avx2', 'default', ...
        flags = {"avx2"} | ({"avx512f"} if level.startswith("avx512") else set()) if level != "default" else set()
        if _torch_cpu_bf16():
            flags.add("avx512_bf16")
    return tuple(f for f in FLAGS_OF_INTEREST if f in flags)
