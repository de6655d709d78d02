"""How ``GenerativeAE`` steps: named optimisers and phases (``PhasedOptimisation``), Adam on the fastest kernel
the parameters' device has, the training losses tracked on the device, and ``torch.compile`` of the networks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

Params = Iterable[nn.Parameter]


def adam(params: Iterable[nn.Parameter], fused: bool = True, **settings: Any) -> torch.optim.Adam:
    """Adam with the fused kernel when ``fused`` and torch has one for the parameters' device (CUDA, and the CPU
    since torch 2.4), else the multi-tensor (``foreach``) kernels, unless ``settings`` (lr, betas, ...) choose
    ``foreach`` or ``fused`` themselves."""
    params = list(params)
    if {"foreach", "fused"} & settings.keys():
        return torch.optim.Adam(params, **settings)
    if fused and params:
        try:
            return torch.optim.Adam(params, fused=True, **settings)
        except RuntimeError:  # no fused kernel for this device or dtype
            pass
    return torch.optim.Adam(params, foreach=True, **settings)


class LossTracker:
    """Each training step's losses, summed on the device over the current epoch (for epoch means), and where each
    first went NaN/inf. Steps returning the same loss names share one stacked update: a step costs four small
    kernels and no host synchronisation (one read at each epoch's first step). A running sum stays NaN/inf once
    a step's loss is, so counting the steps whose running sum is still finite locates the first bad one;
    ``means`` and ``first_bad`` read them back."""

    def __init__(self) -> None:
        self.epoch = -1
        self._groups: dict[tuple[str, ...], _Sums] = {}  # loss names -> their sums over this epoch's steps
        self._bad: dict[str, list[int]] = {}  # loss name -> its first bad (epoch, batch, step) in earlier epochs

    def add(self, losses: dict[str, Tensor], where: tuple[int, int, int]) -> None:
        """Count one step's scalar ``losses`` at ``where`` = (epoch, batch, optimiser step)."""
        if not losses:
            return
        if where[0] != self.epoch:
            self._bad, self.epoch, self._groups = self.first_bad(), where[0], {}
        names = tuple(losses)
        values = torch.stack([v.detach() for v in losses.values()]).float()
        group = self._groups.get(names)
        if group is None:
            group = self._groups[names] = _Sums(values)
        group.total.add_(values)
        group.finite.add_(torch.isfinite(group.total))
        group.steps.append(where)

    def means(self) -> dict[str, float]:
        """Loss name -> its mean over the current epoch's steps so far, sorted by name."""
        totals: dict[str, tuple[float, int]] = {}
        for names, group in self._groups.items():
            for name, value in zip(names, group.total.tolist()):
                before, steps = totals.get(name, (0.0, 0))
                totals[name] = (before + value, steps + len(group.steps))
        return {name: value / steps for name, (value, steps) in sorted(totals.items())}

    def first_bad(self) -> dict[str, list[int]]:
        """Loss name -> the (epoch, batch, step) where it first went NaN/inf, for the losses that did."""
        bad = dict(self._bad)
        for names, group in self._groups.items():
            for name, finite in zip(names, group.finite.tolist()):
                first = list(group.steps[finite]) if finite < len(group.steps) else None
                if first is not None and (name not in bad or first[2] < bad[name][2]):
                    bad[name] = first
        return bad


class _Sums:
    """One kind of step's loss sums (L,), the number of steps their running sums stayed finite (L,), and where
    each step was."""

    def __init__(self, like: Tensor) -> None:
        self.total = torch.zeros_like(like)
        self.finite = torch.zeros(like.shape, dtype=torch.long, device=like.device)
        self.steps: list[tuple[int, int, int]] = []


def compile_nets(module: nn.Module, **options: Any) -> list[str]:
    """``torch.compile`` the networks under ``module`` in place (``nn.Module.compile``, so parameter names and
    checkpoints stay the same): each outermost child with a ``forward`` of its own; children without one, and
    nested aegen models (whose networks are called, not the model), are searched further. Returns their names."""
    from aegen.models.base import GenerativeAE

    names = []
    for name, child in module.named_children():
        if isinstance(child, GenerativeAE) or type(child).forward is nn.Module.forward:
            names += [f"{name}.{inner}" for inner in compile_nets(child, **options)]
        else:
            child.compile(**options)
            names.append(name)
    return names


class PhasedOptimisation(pl.LightningModule):
    """Manual optimisation by named optimisers (``optimizer_groups``), each stepped in its own ``phase``.

    Reads ``lr``, ``betas`` and ``grad_clip`` from the hyperparameters.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: phase names -> (the trainer's optimiser list, those optimisers, the other optimisers' parameters)
        self._phase_params: dict[tuple[str, ...], tuple[list, list, list[nn.Parameter]]] = {}

    def optimizer_groups(self) -> dict[str, Params | tuple[Params, dict[str, Any]]]:
        """Optimiser name -> parameters (or (parameters, Adam overrides)), one optimiser each."""
        raise NotImplementedError

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        groups = self.optimizer_groups()
        self.optimizer_names = list(groups)
        # a fused Adam unscales inside its step, so Lightning cannot clip its gradients under a gradient scaler
        scaler = self._trainer is not None and getattr(self.trainer.precision_plugin, "scaler", None) is not None
        fused = not (scaler and self.hparams.grad_clip)
        optimizers = []
        for params, overrides in (g if isinstance(g, tuple) else (g, {}) for g in groups.values()):
            settings = {"lr": self.hparams.lr, "betas": tuple(self.hparams.betas), **overrides}
            optimizers.append(adam(params, fused=fused, **settings))
        return optimizers

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # after the gradient scaler's unscale (mixed precision), before the step
        if self.hparams.grad_clip:
            self.clip_gradients(optimizer, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")

    def loss_scale(self) -> float:
        """The gradient scaler's current scale under float16 mixed precision, else 1."""
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        return scaler.get_scale() if scaler is not None else 1.0

    @staticmethod
    def gradient_loss(pairs: Iterable[tuple[Tensor, Tensor]], scale: float = 1.0) -> Tensor:
        """A loss whose gradient on each tensor of the (tensor, gradient) pairs is that gradient divided by
        ``scale``: gradients computed by ``autograd.grad`` on losses times ``loss_scale()``, handed to one
        ``update`` (whose backward multiplies by the scale again)."""
        return sum((t.float() * g.detach().float()).sum() for t, g in pairs) / scale

    def optimizer(self, name: str) -> Any:
        """The (Lightning-wrapped) optimiser called ``name`` in ``optimizer_groups``."""
        optimizers = self.optimizers()
        if not isinstance(optimizers, list):
            optimizers = [optimizers]
        return optimizers[self.optimizer_names.index(name)]

    @contextmanager
    def phase(self, *names: str) -> Iterator[Callable[[Tensor], Tensor]]:
        """Run one training phase: only the parameters of optimiser(s) ``names`` get gradients.

        Yields ``update(loss)``, which back-propagates ``loss`` once and steps those optimisers.
        Several names step several optimisers from one backward pass (e.g. GAIA's simultaneous
        generator and discriminator updates; each loss must then reach only its own parameters).
        """
        optimizers, others = self._optimizers_and_others(names)
        state = {p: p.requires_grad for p in others}
        for p in others:
            p.requires_grad_(False)

        def update(loss: Tensor) -> Tensor:
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            scale = self.loss_scale() if len(optimizers) > 1 else None
            for opt in optimizers:
                if scale is not None:
                    self._to_current_scale(opt, scale)
                opt.step()  # clips in on_before_optimizer_step
            return loss.detach()

        try:
            yield update
        finally:
            for p, requires_grad in state.items():
                p.requires_grad_(requires_grad)

    def _to_current_scale(self, optimizer: Any, scale: float) -> None:
        """Bring ``optimizer``'s gradients, computed at loss scale ``scale``, to the gradient scaler's current scale.
        Lightning updates the scaler after each optimiser's step, and the update may grow or back off the scale;
        the optimisers stepped later from the same backward pass would otherwise be unscaled by the new scale."""
        now = self.loss_scale()
        if now == scale:  # the usual case (always without a scaler): nothing to gather
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads:  # torch._foreach_mul_ refuses an empty list
            torch._foreach_mul_(grads, now / scale)

    def _optimizers_and_others(self, names: tuple[str, ...]) -> tuple[list, list[nn.Parameter]]:
        """The (Lightning-wrapped) optimisers ``names`` and every other optimiser's parameters, found once per fit."""
        cached = self._phase_params.get(names)
        if cached is None or cached[0] is not self.trainer.optimizers:
            optimizers = [self.optimizer(name) for name in names]
            own = {p for opt in optimizers for group in opt.param_groups for p in group["params"]}
            others = [p for opt in self.trainer.optimizers for group in opt.param_groups for p in group["params"]
                      if p not in own]
            cached = self._phase_params[names] = (self.trainer.optimizers, optimizers, others)
        return cached[1], cached[2]

