"""The torch backend's refusals, against fake ``torch`` modules: one sentence saying what is missing.

The measurements themselves need a GPU: see test_gpu.py."""

from __future__ import annotations

import os
import sys
import types
import warnings

import pytest

from computelease.probe.core import ProbeUnavailable
from computelease.probe.device import open_backend


def fake_torch(*, cuda: str | None = "12.8", hip: str | None = None, available=True, count=0, warn=None):
    def is_available() -> bool:
        if warn:
            warnings.warn(warn, UserWarning, stacklevel=2)
        return available

    module = types.ModuleType("torch")
    module.__version__ = "2.15.0+cu128" if cuda else "2.15.0+cpu"
    module.version = types.SimpleNamespace(cuda=cuda, hip=hip)
    module.cuda = types.SimpleNamespace(is_available=is_available, device_count=lambda: count)
    return module


@pytest.mark.parametrize(
    ("torch", "sentence"),
    [
        (None, "probe needs PyTorch with CUDA: pip install 'computelease[probe]'"),
        (
            fake_torch(cuda=None),
            "probe needs PyTorch with CUDA, but this one (2.15.0+cpu) is built without: "
            "pip install 'computelease[probe]'",
        ),
        (
            fake_torch(cuda=None, hip="6.2"),
            "probe measures NVIDIA GPUs through CUDA, and this PyTorch is built for ROCm",
        ),
        (fake_torch(available=False), "no CUDA GPU visible"),
        (
            fake_torch(
                available=False, warn="CUDA initialization: The NVIDIA driver on your system is too old\nmore"
            ),
            "no CUDA GPU visible (CUDA initialization: The NVIDIA driver on your system is too old)",
        ),
    ],
)
def test_refusals_are_one_sentence(torch, sentence, monkeypatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(sys.modules, "torch", torch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning is folded into the sentence, never shown
        with pytest.raises(ProbeUnavailable) as caught:
            open_backend()
    assert str(caught.value) == sentence


def test_hidden_gpus_are_named(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setitem(sys.modules, "torch", fake_torch(available=True, count=0))
    with pytest.raises(ProbeUnavailable, match="no CUDA GPU visible \\(CUDA_VISIBLE_DEVICES=''\\)"):
        open_backend()


def test_gpus_are_numbered_as_nvml_numbers_them(monkeypatch) -> None:
    # Set before torch is imported (CUDA reads it once): the probe's GPU i is the heartbeat's GPU i.
    seen = {}

    class Recorder(types.ModuleType):
        def __getattr__(self, name):  # the first touch of torch inside open_backend
            seen.setdefault("order", os.environ.get("CUDA_DEVICE_ORDER"))
            return types.SimpleNamespace(cuda=None, hip=None) if name == "version" else "2.15.0+cpu"

    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.setitem(sys.modules, "torch", Recorder("torch"))
    with pytest.raises(ProbeUnavailable):
        open_backend()
    assert seen["order"] == "PCI_BUS_ID"
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")  # an operator's own choice is kept
    with pytest.raises(ProbeUnavailable):
        open_backend()
    assert os.environ["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"
