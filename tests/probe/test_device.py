"""The torch backend's refusals, against fake ``torch`` modules: one sentence saying what is missing.

The measurements themselves need a GPU: see test_gpu.py."""

from __future__ import annotations

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
