"""Optimizers for networks compiled by snnc (and for any torch module).

:class:`AdamRewiring` is Deep R (Bellec, Kappel, Maass & Legenstein, "Deep Rewiring:
Training very sparse deep networks", ICLR 2018) carried over from SGD to Adam, after
SpikingFlow's ``softbp.optim.AdamRewiring`` (seed 003): the same constructor, plus a
``generator`` for its random numbers and a per-group ``rewire`` switch.

Deep R in brief. Every entry ``k`` of a rewired parameter is a *connection* with a sign
``s_k`` in {-1, +1} that is fixed for good and a magnitude ``theta_k``; the weight is
``w_k = s_k * theta_k`` while the connection is *active* and exactly ``0`` while it is
*dormant*. One step, for every active entry (``lr`` the learning rate)::

    w_k <- AdamStep(w_k)  -  lr * l1 * s_k  +  sqrt(2 * lr * T) * nu_k,   nu_k ~ N(0, 1)

i.e. the plain ``torch.optim.Adam`` update (computed by torch's own Adam, with every
option that Adam has), then the l1 penalty pulling ``theta_k`` towards 0, then Gaussian
noise at temperature ``T``. An active entry whose weight reaches 0 or crosses it
(``w_k * s_k <= 0``) becomes dormant: it is set to 0 and its Adam moments are cleared.
Then exactly as many dormant entries as went dormant in this step are picked uniformly
at random (among all dormant entries of the same parameter tensor, the ones that have
just gone dormant included) and reactivated with ``theta_k = init_value``, i.e. the
weight ``s_k * init_value``; Adam's moments for them start again from 0. The number of
active connections of each rewired tensor therefore never changes, and signs never flip.

Active and dormant are read off the weights: an entry is active exactly when
``w_k * s_k > 0``. The count is the one the parameter had when it was handed to the
optimizer: its non-zero entries (use :func:`sparsify_` first to start sparse). The sign of
a non-zero entry is the sign of its initial value; the sign of an entry that is 0 at that
time is drawn at random (+1 or -1 with equal probability). Signs live in the optimizer's
state (``state[p]["rewire_sign"]``, same dtype as ``p``) and so travel with
``state_dict()`` / ``load_state_dict()``. Writing non-zero values into dormant entries
from outside, or zeros into active ones, changes the count; the optimizer does not undo it.

``init_value`` defaults to ``None``, which means ``torch.finfo(p.dtype).tiny``: the paper
reactivates with ``theta_k = 0``; the smallest normal number keeps the connection
distinguishable from a dormant one while being 0 for all practical purposes.

Random numbers. All of them (the signs of zero entries, the noise, the choice of which
dormant entries to reactivate) come from ``generator`` when one is given, otherwise from
torch's global generator of the parameters' device. They are drawn on the generator's
device and moved to the parameter's, so a CPU generator serves CUDA parameters too (its
stream does not depend on where the parameters live). Per parameter tensor and step the
order is fixed: noise (only when ``T > 0``) then the reactivation permutation (only when
some entry went dormant). With ``T = 0`` and ``l1 = 0`` and no entry reaching 0, a step is
bit for bit ``torch.optim.Adam``'s.

Parameter groups may set ``lr``, ``T``, ``l1``, ``init_value`` and ``rewire`` of their own;
a group with ``rewire=False`` (say the biases) is plain Adam. Parameters without a
gradient are skipped altogether, as Adam skips them.

.. note:: As SpikingFlow warns, no convergence proof exists for Deep R on Adam, and how
   reliably it prunes surrogate-gradient SNNs is not known.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["AdamRewiring", "sparsify_"]

_SIGN = "rewire_sign"
_MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def _device_of(generator: torch.Generator | None, fallback: torch.device) -> torch.device:
    return generator.device if generator is not None else fallback


@torch.no_grad()
def sparsify_(params: torch.Tensor | Iterable[torch.Tensor], connectivity: float,
              generator: torch.Generator | None = None) -> None:
    """Keep ``round(connectivity * numel)`` randomly chosen entries of each tensor, zero the rest.

    In place; meant for the weights before they are handed to :class:`AdamRewiring`, whose
    number of active connections is then exactly the number kept. The choice uses
    ``generator`` (or torch's global generator): one ``randperm`` per tensor, in order.
    """
    if not 0.0 <= connectivity <= 1.0:
        raise ValueError(f"connectivity must lie in [0, 1], not {connectivity}")
    tensors = [params] if isinstance(params, torch.Tensor) else list(params)
    for p in tensors:
        n = p.numel()
        keep = int(round(connectivity * n))
        device = _device_of(generator, p.device)
        order = torch.randperm(n, generator=generator, device=device).to(p.device)
        mask = torch.zeros(n, dtype=torch.bool, device=p.device)
        mask[order[:keep]] = True
        p.masked_fill_(~mask.view(p.shape), 0)


class AdamRewiring(torch.optim.Adam):
    """Deep R (sign-constrained rewiring at temperature ``T`` with an l1 penalty) on Adam.

    Arguments as ``torch.optim.Adam`` (``lr``, ``betas``, ``eps``, ``weight_decay``,
    ``amsgrad`` and the keyword-only ones, passed through), plus

    * ``T`` -- temperature of the Deep R noise: ``sqrt(2 * lr * T) * N(0, 1)`` per step;
    * ``l1`` -- l1 penalty: active magnitudes shrink by ``lr * l1`` per step;
    * ``init_value`` -- magnitude of a reactivated connection (``None``: the dtype's
      smallest normal number, see the module's notes);
    * ``rewire`` -- default of the per-group switch; ``False`` groups are plain Adam;
    * ``generator`` -- a ``torch.Generator`` for every random number, or ``None`` for
      torch's global one.

    See the module docstring for the algorithm. :meth:`sign`, :meth:`active` and
    :meth:`num_active` inspect the connections.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False,
                 T: float = 1e-5, l1: float = 1e-5, *, init_value: float | None = None,
                 rewire: bool = True, generator: torch.Generator | None = None, **adam_kwargs):
        if not 0.0 <= T:
            raise ValueError(f"Invalid temperature T: {T}")
        if not 0.0 <= l1:
            raise ValueError(f"Invalid l1 penalty: {l1}")
        if init_value is not None and not init_value > 0.0:
            raise ValueError(f"init_value must be positive, not {init_value}")
        # add_param_group (called by Optimizer.__init__) reads these before self.defaults
        # knows the keys.
        self._rewire_defaults = {"T": T, "l1": l1, "init_value": init_value, "rewire": rewire}
        self.generator = generator
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, **adam_kwargs)
        self.defaults.update(self._rewire_defaults)

    # ----------------------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict) -> None:
        for key, value in self._rewire_defaults.items():
            param_group.setdefault(key, value)
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group["rewire"]:
            for p in group["params"]:
                self._init_sign(p)

    @torch.no_grad()
    def _init_sign(self, p: torch.Tensor) -> None:
        if torch.is_complex(p) or not p.is_floating_point():
            raise ValueError("AdamRewiring rewires real floating-point parameters only; "
                             "put others in a group with rewire=False")
        state = self.state[p]
        if _SIGN in state:
            return
        sign = torch.sign(p.detach()).clone(memory_format=torch.preserve_format)
        zero = sign == 0
        if bool(zero.any()):
            device = _device_of(self.generator, p.device)
            coin = torch.randint(0, 2, p.shape, generator=self.generator, device=device)
            sign[zero] = (coin.to(device=p.device, dtype=p.dtype) * 2 - 1)[zero]
        state[_SIGN] = sign

    def __setstate__(self, state: dict) -> None:
        # Adam.__setstate__ expects every non-empty state to hold "step"; the sign of a
        # parameter that has not stepped yet is kept aside meanwhile.
        aside = {p: s.pop(_SIGN) for p, s in state.get("state", {}).items()
                 if _SIGN in s and "step" not in s}
        super().__setstate__(state)
        for p, sign in aside.items():
            self.state[p][_SIGN] = sign
        for group in self.param_groups:
            for key, value in getattr(self, "_rewire_defaults", {}).items():
                group.setdefault(key, value)

    def __getstate__(self):
        state = super().__getstate__()
        state["_rewire_defaults"] = self._rewire_defaults
        state["generator"] = self.generator
        return state

    # ------------------------------------------------------------------------ inspection
    def sign(self, p: torch.Tensor) -> torch.Tensor:
        """The fixed signs (+1/-1, dtype of ``p``) of a rewired parameter."""
        return self.state[p][_SIGN]

    @torch.no_grad()
    def active(self, p: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the active connections of a rewired parameter (``w * s > 0``)."""
        return p * self.state[p][_SIGN] > 0

    def num_active(self, p: torch.Tensor | None = None) -> int:
        """Active connections of ``p``, or of every rewired parameter when ``p`` is None."""
        if p is not None:
            return int(self.active(p).sum())
        return sum(int(self.active(q).sum()) for group in self.param_groups
                   if group["rewire"] for q in group["params"])

    # ------------------------------------------------------------------------------ step
    def step(self, closure=None):
        """One Adam step, then Deep R's l1, noise, pruning and reactivation; returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        rewired = [(group, p) for group in self.param_groups if group["rewire"]
                   for p in group["params"] if p.grad is not None]
        with torch.no_grad():
            was_active = {p: self.active(p) for _, p in rewired}
        # torch's Adam initialises a parameter's state only while it is empty.
        aside = {p: self.state[p].pop(_SIGN) for _, p in rewired if "step" not in self.state[p]}
        try:
            super().step()
        finally:
            for p, sign in aside.items():
                self.state[p][_SIGN] = sign

        with torch.no_grad():
            for group, p in rewired:
                self._rewire(group, p, was_active[p])
        return loss

    def _rewire(self, group: dict, p: torch.Tensor, was_active: torch.Tensor) -> None:
        state = self.state[p]
        sign = state[_SIGN]
        lr = float(group["lr"])
        T, l1 = float(group["T"]), float(group["l1"])
        generator = self.generator
        device = _device_of(generator, p.device)

        if l1 > 0.0:
            p.sub_(sign, alpha=lr * l1)
        if T > 0.0:
            noise = torch.randn(p.shape, generator=generator, device=device, dtype=p.dtype)
            p.add_(noise.to(p.device), alpha=math.sqrt(2.0 * lr * T))

        survived = was_active & (p * sign > 0)
        p.masked_fill_(~survived, 0)                  # dormant: exactly 0
        lost = int(was_active.sum()) - int(survived.sum())
        reborn = None
        if lost > 0:
            dormant = (~survived).reshape(-1).nonzero().squeeze(1)
            pick = torch.randperm(dormant.numel(), generator=generator, device=device)[:lost]
            reborn = torch.zeros(p.numel(), dtype=torch.bool, device=p.device)
            reborn[dormant[pick.to(p.device)]] = True
            reborn = reborn.view(p.shape)
            init = group["init_value"]
            magnitude = torch.finfo(p.dtype).tiny if init is None else float(init)
            p.copy_(torch.where(reborn, sign * magnitude, p))
        # Adam's memory of an entry lasts while it stays active.
        for key in _MOMENTS:
            moment = state.get(key)
            if isinstance(moment, torch.Tensor) and moment.shape == p.shape:
                moment.masked_fill_(~survived, 0)
