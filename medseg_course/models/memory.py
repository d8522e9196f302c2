"""Activation memory: what a network's forward pass produces, and what it keeps for the backward pass.

Training memory is dominated by activations, not weights: every layer's output (and often its
input) is kept until the backward pass has used it. For a 3D network each feature map has a
depth axis too, so a 3D U-Net on a ``40 x 56 x 40`` volume holds 40 times the activations of a 2D
U-Net on one ``56 x 40`` slice. Three measurements, from the formula to the allocator:

* :func:`tensor_bytes` -- the formula: ``B * C * prod(spatial) * bytes per element``;
* :func:`layer_outputs` / :func:`activation_elements` -- the output of every layer, recorded by
  forward hooks (outputs of in-place layers, which share their input's memory, counted once);
* :func:`saved_activation_bytes` -- the bytes autograd actually keeps for the backward pass,
  recorded by :func:`torch.autograd.graph.saved_tensors_hooks` (exact on any device);
* :func:`cuda_peak_bytes` -- on a GPU, the allocator's peak during a forward (and backward) pass,
  from :func:`torch.cuda.max_memory_allocated`.

Introduced in 09_unet3d.
"""

from __future__ import annotations

import copy

import math
import numbers
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn as nn

__all__ = [
    "LayerOutput",
    "tensor_bytes",
    "layer_outputs",
    "activation_elements",
    "saved_activation_bytes",
    "cuda_peak_bytes",
]


class LayerOutput(NamedTuple):
    """One layer's output in a forward pass (:func:`layer_outputs`).

    Attributes
    ----------
    name : str
        The module's qualified name, e.g. ``"downs.0.convs.conv_0.conv"``.
    kind : str
        Its class name, e.g. ``"Conv3d"``.
    shape : tuple of int
        Output shape ``(B, C, *spatial)``.
    elements : int
        Elements of the output.
    new : bool
        False when the output shares memory with a tensor seen before (an in-place activation,
        a view): it costs no new memory.
    """

    name: str
    kind: str
    shape: tuple
    elements: int
    new: bool


def tensor_bytes(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> int:
    """Bytes of a dense tensor of ``shape`` and ``dtype``: ``prod(shape) * element size``.

    Introduced in 09_unet3d.

    Parameters
    ----------
    shape : sequence of int
        E.g. ``(B, C, D, H, W)``: every axis counts, the batch too.
    dtype : torch.dtype, default torch.float32
        4 bytes per element for float32, 2 for float16/bfloat16.

    Examples
    --------
    >>> tensor_bytes((2, 16, 40, 56, 40))  # one feature map of a 3D U-Net's first level
    11468800
    >>> tensor_bytes((2, 16, 40, 56, 40), torch.float16)
    5734400
    """
    if (isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence)
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise ValueError(f"shape must be a sequence of non-negative ints such as (B, C, D, H, W), got {shape!r}")
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype such as torch.float32, got {dtype!r}")
    return int(math.prod(int(n) for n in shape)) * torch.empty((), dtype=dtype).element_size()


def _as_input(model: nn.Module, x, dtype) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if (isinstance(x, (str, bytes)) or not isinstance(x, Sequence)
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in x)):
        raise ValueError(f"x must be an input tensor or its shape (B, C, *spatial), got {x!r}")
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    return torch.zeros(tuple(int(n) for n in x), dtype=dtype, device=device)


def _storage_key(t: torch.Tensor):
    try:
        s = t.untyped_storage()
        # meta storages have no data (every data_ptr is 0): tell them apart by the storage object itself
        return (t.device.type, s._cdata if t.device.type == "meta" else s.data_ptr(), s.nbytes())
    except (RuntimeError, NotImplementedError):  # tensors without a plain storage (mkldnn, sparse)
        return (t.device.type, id(t), t.numel() * t.element_size())


def layer_outputs(model: nn.Module, x, *, dtype: torch.dtype = torch.float32) -> list[LayerOutput]:
    """Run ``model`` once without gradients and record the output of every leaf layer.

    Introduced in 09_unet3d.

    Parameters
    ----------
    model : nn.Module
        Run in its current mode (train or eval).
    x : torch.Tensor or sequence of int
        The input, or its shape ``(B, C, *spatial)`` (zeros on the model's device).
    dtype : torch.dtype, default torch.float32
        Of the zeros made from a shape.

    Returns
    -------
    list of LayerOutput
        In execution order, ``nn.Identity`` placeholders left out. Outputs that share memory with an earlier one (in-place
        activations) have ``new=False``.

    Examples
    --------
    >>> from medseg_course.models.blocks import ConvBlock
    >>> for out in layer_outputs(ConvBlock(3, 1, 4), (2, 1, 6, 8, 8)):
    ...     print(out.kind, out.shape, out.elements, out.new)
    Conv3d (2, 4, 6, 8, 8) 3072 True
    BatchNorm3d (2, 4, 6, 8, 8) 3072 True
    ReLU (2, 4, 6, 8, 8) 3072 False
    """
    x = _as_input(model, x, dtype)
    records: list[LayerOutput] = []
    seen: set = set()
    alive: list = []  # keep every output alive: freed memory would be reused and look shared

    def hook(module, inputs, output, name):
        outs = output if isinstance(output, (tuple, list)) else [output]
        for out in outs:
            if isinstance(out, torch.Tensor):
                key = _storage_key(out)
                records.append(LayerOutput(name, type(module).__name__, tuple(out.shape), out.numel(), key not in seen))
                seen.add(key)
                alive.append(out)

    handles = [m.register_forward_hook(lambda mod, i, o, n=name: hook(mod, i, o, n))
               for name, m in model.named_modules()
               if not list(m.children()) and not isinstance(m, nn.Identity)]  # leaves that compute
    try:
        seen.add(_storage_key(x))
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        alive.clear()
    return records


def activation_elements(model: nn.Module, x, *, dtype: torch.dtype = torch.float32) -> int:
    """Total elements of the layer outputs of one forward pass, in-place outputs counted once.

    Introduced in 09_unet3d.

    Multiply by the element size (4 bytes for float32) for bytes. This counts what the layers
    produce; :func:`saved_activation_bytes` measures what training keeps.

    Examples
    --------
    >>> from medseg_course.models.blocks import ConvBlock
    >>> activation_elements(ConvBlock(3, 1, 4), (2, 1, 6, 8, 8))  # conv and norm outputs
    6144
    """
    return sum(r.elements for r in layer_outputs(model, x, dtype=dtype) if r.new)


def saved_activation_bytes(model: nn.Module, x, *, dtype: torch.dtype = torch.float32, meta: bool = False) -> int:
    """Bytes that autograd keeps from one forward pass for the backward pass (weights excluded).

    Introduced in 09_unet3d.

    Parameters
    ----------
    model : nn.Module
        Run in its current mode (``model.train()`` for what training keeps).
    x : torch.Tensor or sequence of int
        The input, or its shape (zeros on the model's device).
    dtype : torch.dtype, default torch.float32
    meta : bool, default False
        Count without computing: a copy of the model runs on PyTorch's ``meta`` device, whose
        tensors have shapes and no data, so nothing is allocated. The same count, for inputs too
        large for this machine's memory.

    Returns
    -------
    int
        Bytes of the distinct storages saved by the operations of the forward pass, as recorded
        by :func:`torch.autograd.graph.saved_tensors_hooks`; parameters are left out, the input
        counts if a layer saves it (the first convolution does).

    Notes
    -----
    This is the activation memory of training, exactly, on any device: the tensors autograd
    must keep until the backward pass. A convolution saves its input, a normalisation its input
    and statistics, an in-place ReLU its output; tensors shared by several operations count
    once. The allocator may need a little more (workspaces, the gradients themselves).

    Examples
    --------
    >>> from medseg_course.models.blocks import ConvBlock
    >>> saved_activation_bytes(ConvBlock(3, 1, 4, norm=None), (2, 1, 6, 8, 8))  # conv input, ReLU output
    15360
    >>> saved_activation_bytes(ConvBlock(3, 1, 4, norm=None), (2, 1, 6, 8, 8), meta=True)
    15360
    """
    if meta:
        model = copy.deepcopy(model).to("meta")
        x = x.to("meta") if isinstance(x, torch.Tensor) else x
    x = _as_input(model, x, dtype)
    params = {_storage_key(p) for p in model.parameters()} | {_storage_key(b) for b in model.buffers()}
    saved: dict = {}

    def pack(t):
        if isinstance(t, torch.Tensor):
            key = _storage_key(t)
            if key not in params:
                saved[key] = key[2]
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        if not x.requires_grad and not any(p.requires_grad for p in model.parameters()):
            x = x.detach().requires_grad_(x.is_floating_point())
        model(x)
    return int(sum(saved.values()))


def cuda_peak_bytes(model: nn.Module, x, *, backward: bool = True, dtype: torch.dtype = torch.float32) -> int:
    """Peak GPU memory allocated during one forward (and backward) pass, beyond what was allocated before.

    Introduced in 09_unet3d.

    Parameters
    ----------
    model : nn.Module
        On a CUDA device, in the mode to measure.
    x : torch.Tensor or sequence of int
        The input (moved to the model's device) or its shape.
    backward : bool, default True
        Also run the backward pass of the outputs' sum (gradients then count too).
    dtype : torch.dtype, default torch.float32

    Returns
    -------
    int
        ``torch.cuda.max_memory_allocated()`` during the pass minus the memory allocated before
        it (weights, input): activations, their gradients and the convolution workspaces.

    Raises
    ------
    RuntimeError
        If the model is not on a CUDA device.
    """
    p = next(model.parameters(), None)
    if p is None or p.device.type != "cuda":
        raise RuntimeError("cuda_peak_bytes needs a model on a CUDA GPU (model.to('cuda')); on the CPU "
                           "use saved_activation_bytes, which is exact on any device")
    x = _as_input(model, x, dtype).to(p.device)
    torch.cuda.synchronize(p.device)
    before = torch.cuda.memory_allocated(p.device)
    torch.cuda.reset_peak_memory_stats(p.device)
    with torch.enable_grad():
        out = model(x)
        if backward:
            out.float().sum().backward()
    torch.cuda.synchronize(p.device)
    peak = torch.cuda.max_memory_allocated(p.device) - before
    del out
    model.zero_grad(set_to_none=True)
    return int(peak)
