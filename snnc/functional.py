"""Losses and helpers for training the networks snnc builds, as plain tensor functions
(the seed's SpikingFlow.softbp.functional, and its Tempotron loss).

- `reset_net(net)`: call `reset()` on every module of `net` that has one (snnc's
  generated networks, populations, synapses, ...; any nn.Module tree).
- `spike_cluster(v, v_threshold, T_in)`: STCA's spike clusters (Gu et al., IJCAI 2019):
  the number of clusters of each neuron and the steps k_positive / k_negative that its
  loss pushes up / down.
- `spike_similar_loss(spikes, labels, kernel_type, loss_type, *args)`: how far the
  similarity of the samples' spike trains is from the similarity of their labels.
- `kernel_dot_product(x, y, kernel, *args)`: the [N, K] matrix of kernel inner products
  (linear, polynomial, sigmoid, gaussian).
- `set_threshold_margin(output_layer, label_one_hot, eval_threshold, threshold0,
  threshold1)`: thresholds with a margin on a classifier's output layer in training.
- `redundant_one_hot(labels, num_classes, n)`: one hot with n columns per class.
- `tempotron_mse_loss`: the seed's Tempotron loss (SpikingFlow's Tempotron.mse_loss).
- `first_spike_index`, `first_spike_time`: the first spike of each neuron in a spike
  train laid out [*, T] (time last, the seed's softbp.functional layout).
"""
from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import nn

from snnc.runtime.event import NO_SPIKE

__all__ = ["first_spike_index", "first_spike_time", "kernel_dot_product",
           "redundant_one_hot", "reset_net", "set_threshold_margin", "spike_cluster",
           "spike_similar_loss", "tempotron_mse_loss"]

KERNELS = ("linear", "polynomial", "sigmoid", "gaussian")
SIMILARITY_KERNELS = ("linear", "sigmoid", "gaussian")   # those whose values lie in [0, 1]
LOSSES = ("mse", "l1", "bce")


def reset_net(net: nn.Module) -> None:
    """Back to the initial state: `reset()` on every module of `net` (itself included)
    that has a callable `reset`, as the seed's reset_net does. snnc's generated networks
    (Network.reset), their populations, synapses and encoders all have one; a module
    without one is left as it is. Returns None."""
    if not isinstance(net, nn.Module):
        raise ValueError(f"reset_net takes an nn.Module, got {type(net).__name__}")
    for module in net.modules():
        reset = getattr(module, "reset", None)
        if callable(reset):
            reset()


def _described(value) -> str:
    """A tensor's shape, or what the value is instead, for the refusals."""
    if isinstance(value, torch.Tensor):
        return str(list(value.shape))
    return f"a {type(value).__name__}"


def _whole(value, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return int(value)


def spike_cluster(v: torch.Tensor, v_threshold, T_in: int):
    """STCA's spike clusters (Gu, Xiao, Pan et al., IJCAI 2019) of N neurons.

    v [T, N] is the voltage at t = 0 .. T-1, a spike where v >= v_threshold (a number, or
    a tensor of N thresholds). Spikes at most T_in steps apart are in one cluster: any two
    neighbouring spikes of a cluster are <= T_in apart, and every spike of it is > T_in
    from every spike outside it. Returns (N_o, k_positive, k_negative):

    - N_o: long [N], the number of clusters of each neuron.
    - k_positive: bool [T, N], at most one True per neuron: the step of highest voltage
      among those more than T_in from every spike of the neuron (so a spike there would
      be a new cluster); the earliest of equal ones. All False for a neuron where no step
      is that far from its spikes.
    - k_negative: bool [T, N], at most one True per neuron: the last spike of its
      cluster with fewest spikes (the earliest of equal ones), the one easiest to remove.
      All False for a neuron that never fires.

    With N_d the desired counts, the paper's loss (the seed's example, the masks summed
    over time) is `((N_o > N_d) * ((v * k_negative).sum(0) - 1)).sum()
    + ((N_o < N_d) * (1 - (v * k_positive).sum(0))).sum()`.
    No gradient (counts and indices)."""
    if not isinstance(v, torch.Tensor) or v.dim() != 2:
        raise ValueError(f"v must be a [T, N] tensor, got {_described(v)}")
    T_in = _whole(T_in, "T_in", 0)
    T, N = v.shape
    v = v.detach()
    if isinstance(v_threshold, torch.Tensor):
        if v_threshold.dim() > 1 or (v_threshold.dim() == 1 and v_threshold.shape[0] != N):
            raise ValueError(f"v_threshold must be a number or [{N}], "
                             f"got {list(v_threshold.shape)}")
        v_threshold = v_threshold.detach().to(v.device)
    spike = v >= v_threshold
    device = v.device
    count_o = torch.zeros(N, dtype=torch.long, device=device)
    in_cluster = torch.zeros(N, dtype=torch.long, device=device)    # spikes of the current one
    fewest = torch.full((N,), T + 1, dtype=torch.long, device=device)
    fewest_t = torch.full((N,), -1, dtype=torch.long, device=device)
    last = torch.full((N,), -(T_in + 1), dtype=torch.long, device=device)   # "no spike yet"
    since = torch.full((T, N), T + T_in + 1, dtype=torch.long, device=device)
    for t in range(T):
        fired = spike[t]
        new = fired & (t - last > T_in)
        closes = new & (count_o > 0) & (in_cluster < fewest)   # the cluster before ends
        fewest = torch.where(closes, in_cluster, fewest)
        fewest_t = torch.where(closes, last, fewest_t)
        in_cluster = torch.where(new, torch.ones_like(in_cluster),
                                 in_cluster + fired.to(torch.long))
        count_o += new.to(torch.long)
        last = torch.where(fired, torch.full_like(last, t), last)
        seen = last > -(T_in + 1)
        since[t] = torch.where(seen, t - last, since[t])
    closes = (count_o > 0) & (in_cluster < fewest)
    fewest_t = torch.where(closes, last, fewest_t)
    steps = torch.arange(T, device=device).unsqueeze(1)
    k_negative = steps == fewest_t
    # the distance to the next spike, from the end backwards
    until = torch.full((T, N), T + T_in + 1, dtype=torch.long, device=device)
    following = torch.full((N,), -1, dtype=torch.long, device=device)
    for t in range(T - 1, -1, -1):
        following = torch.where(spike[t], torch.full_like(following, t), following)
        until[t] = torch.where(following >= 0, following - t, until[t])
    far = torch.minimum(since, until) > T_in
    if T == 0:
        return count_o, far, k_negative
    masked = torch.where(far, v, torch.full_like(v, float("-inf")))
    masked = torch.where(torch.isnan(masked), torch.full_like(v, float("-inf")), masked)
    k_positive = (steps == masked.argmax(dim=0)) & far   # none where no step is far
    return count_o, k_positive, k_negative


def _kernel_argument(args: tuple, kernel: str, name: str) -> float | torch.Tensor:
    if not args:
        raise ValueError(f"the {kernel} kernel needs {name} as its extra argument (args[0])")
    return args[0]


def kernel_dot_product(x: torch.Tensor, y: torch.Tensor, kernel: str = "linear", *args
                       ) -> torch.Tensor:
    """The inner products of x's rows with y's in a kernel's space: x [N, M] and y [K, M]
    (the seed has K = N) -> ret [N, K], ret[i][j] = κ(x_i, y_j):

    - "linear": x_i·y_j
    - "polynomial": (x_i·y_j)^d, d = args[0]
    - "sigmoid": sigmoid(α x_i·y_j), α = args[0]
    - "gaussian": exp(-||x_i - y_j||² / (2σ²)), σ = args[0]

    Differentiable in x and y (||x_i - y_j||² as ||x_i||² + ||y_j||² - 2 x_i·y_j,
    clamped at 0)."""
    for name, value in (("x", x), ("y", y)):
        if not isinstance(value, torch.Tensor) or value.dim() != 2:
            raise ValueError(f"{name} must be a 2-D [N, M] tensor, got "
                             f"{_described(value)}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same M, got {list(x.shape)} and {list(y.shape)}")
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}: one of {', '.join(KERNELS)}")
    dot = x.mm(y.t())
    if kernel == "linear":
        return dot
    if kernel == "polynomial":
        return dot.pow(_kernel_argument(args, kernel, "the degree d"))
    if kernel == "sigmoid":
        return torch.sigmoid(_kernel_argument(args, kernel, "α") * dot)
    sigma = _kernel_argument(args, kernel, "σ")
    if not isinstance(sigma, torch.Tensor) and sigma == 0:
        raise ValueError("the gaussian kernel's σ must not be 0")
    distance = (x.square().sum(dim=1, keepdim=True) + y.square().sum(dim=1).unsqueeze(0)
                - 2 * dot).clamp_min(0)
    return torch.exp(-distance / (2 * sigma * sigma))


def spike_similar_loss(spikes: torch.Tensor, labels: torch.Tensor, kernel_type: str = "linear",
                       loss_type: str = "mse", *args) -> torch.Tensor:
    """The seed's similarity loss, a tensor of shape [1].

    spikes [N, M, T]: N samples' spikes from M output neurons over T steps; labels [N, C]:
    labels[i][k] == 1 where sample i is of class k (several classes allowed). sim [N, N]
    is 1 where two samples share a class, else 0; sim_p [N, N] is the kernel inner
    product (`kernel_dot_product`, kernel_type "linear", "sigmoid" (α = args[0]) or
    "gaussian" (σ = args[0])) of their spike trains flattened to M·T, the linear one
    normalised to x_i·x_j / (||x_i|| ||x_j||) (0 where a train is all zero). The loss is
    the mean over the N² pairs of (sim_p - sim)² ("mse"), |sim_p - sim| ("l1"), or the
    binary cross entropy of sim_p against sim ("bce", logs clamped at -100 as PyTorch's;
    refused where a linear sim_p, a cosine, is negative). Differentiable in spikes."""
    if not isinstance(spikes, torch.Tensor) or spikes.dim() != 3:
        raise ValueError(f"spikes must be [N, M, T], got "
                         f"{_described(spikes)}")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 2 \
            or labels.shape[0] != spikes.shape[0]:
        raise ValueError(f"labels must be [{spikes.shape[0]}, C], got "
                         f"{_described(labels)}")
    if spikes.shape[0] == 0:
        raise ValueError("spike_similar_loss needs at least one sample (N > 0)")
    if kernel_type not in SIMILARITY_KERNELS:
        raise ValueError(f"kernel_type must be one of {', '.join(SIMILARITY_KERNELS)} "
                         f"(values in [0, 1]), got {kernel_type!r}")
    if loss_type not in LOSSES:
        raise ValueError(f"loss_type must be one of {', '.join(LOSSES)}, got {loss_type!r}")
    flat = spikes.flatten(start_dim=1)
    sim_p = kernel_dot_product(flat, flat, kernel_type, *args)
    if kernel_type == "linear":
        norm = flat.norm(dim=1)
        lengths = norm.unsqueeze(1) * norm.unsqueeze(0)
        zero = lengths == 0
        sim_p = torch.where(zero, torch.zeros_like(sim_p),
                            sim_p / torch.where(zero, torch.ones_like(lengths), lengths))
        sim_p = sim_p.clamp(-1.0, 1.0)    # a cosine, past 1 only by rounding
    marks = (labels != 0).to(sim_p.dtype)
    sim = (marks.mm(marks.t()) > 0).to(sim_p.dtype)
    if loss_type == "mse":
        loss = F.mse_loss(sim_p, sim)
    elif loss_type == "l1":
        loss = F.l1_loss(sim_p, sim)
    else:
        if (sim_p < 0).any():
            raise ValueError("the bce loss needs sim_p in [0, 1]: with the linear kernel "
                             "no two spike trains may have a negative inner product")
        loss = F.binary_cross_entropy(sim_p, sim)
    return loss.reshape(1)


def set_threshold_margin(output_layer, label_one_hot: torch.Tensor, eval_threshold=1.0,
                         threshold0=0.9, threshold1=1.1) -> None:
    """Thresholds with a margin on a classifier's C output neurons (output [B, C]).

    In training (`output_layer.training`), `output_layer.v_threshold` becomes a [B, C]
    tensor: threshold1 (1.1) for each sample's true class (label_one_hot == 1),
    threshold0 (0.9) for the others; in evaluation it becomes eval_threshold (1.0) for
    all. label_one_hot [B, C], one hot. The layer must have a `v_threshold` to set (a
    softbp-style neuron layer); a population whose threshold snnc compiled into its step
    has none, and is refused. Returns None."""
    if not hasattr(output_layer, "v_threshold"):
        raise ValueError(f"{type(output_layer).__name__} has no v_threshold to set")
    if not isinstance(label_one_hot, torch.Tensor) or label_one_hot.dim() != 2:
        raise ValueError(f"label_one_hot must be [batch_size, C], got "
                         f"{_described(label_one_hot)}")
    if getattr(output_layer, "training", True):
        dtype = label_one_hot.dtype if label_one_hot.is_floating_point() \
            else torch.get_default_dtype()
        threshold = torch.full(label_one_hot.shape, float(threshold0), dtype=dtype,
                               device=label_one_hot.device)
        threshold[label_one_hot == 1] = float(threshold1)
        output_layer.v_threshold = threshold
    else:
        output_layer.v_threshold = eval_threshold


def redundant_one_hot(labels: torch.Tensor, num_classes: int, n: int) -> torch.Tensor:
    """A redundant one hot code: labels [batch_size] (class indices) -> float
    [batch_size, num_classes * n], class k coded by ones in columns k·n .. k·n + n - 1
    and zeros in the other (num_classes - 1)·n."""
    num_classes = _whole(num_classes, "num_classes", 1)
    n = _whole(n, "n", 1)
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
        raise ValueError(f"labels must be a [batch_size] tensor, got "
                         f"{_described(labels)}")
    if labels.dtype == torch.bool or labels.is_complex() \
            or (labels.is_floating_point() and not torch.equal(labels, labels.trunc())):
        raise ValueError(f"labels must be class indices (whole numbers), got {labels}")
    labels = labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got "
                         f"{labels.min().item()} .. {labels.max().item()}")
    code = F.one_hot(labels, num_classes).to(torch.get_default_dtype())
    return code.repeat_interleave(n, dim=1)


def tempotron_mse_loss(v_max: torch.Tensor, label: torch.Tensor, num_classes: int,
                       v_threshold: float | torch.Tensor = 1.0) -> torch.Tensor:
    """The seed's Tempotron loss: a neuron is wrong when it fires (v_max >= v_threshold)
    and is not the label's, or is the label's and does not; the loss is the squared
    distance of the wrong neurons' v_max to the threshold, summed over neurons and
    averaged over the batch: sum(((v_max - v_threshold) · wrong)²) / B.

    v_max [B, num_classes] (the Tempotron's "v_max" readout), label [B] (class indices),
    v_threshold a number or a tensor broadcastable to v_max. The gradient is
    2 (v_max - v_threshold) / B on the wrong neurons, 0 on the others, so through the
    "v_max" readout it is the seed's closed form scaled by the error. (The seed's code
    takes one_hot(label, 10) whatever num_classes is; this one uses num_classes.)"""
    if v_max.dim() != 2 or v_max.shape[1] != num_classes:
        raise ValueError(f"v_max must be [B, {num_classes}], got {list(v_max.shape)}")
    if label.dim() != 1 or label.shape[0] != v_max.shape[0]:
        raise ValueError(f"label must be [{v_max.shape[0]}], got {list(label.shape)}")
    if label.shape[0] == 0:
        raise ValueError("tempotron_mse_loss needs at least one sample (B > 0)")
    if label.min() < 0 or label.max() >= num_classes:
        raise ValueError(f"label must lie in [0, {num_classes}), got "
                         f"{label.min().item()} .. {label.max().item()}")
    target = F.one_hot(label.long(), num_classes).to(torch.bool)
    wrong = (v_max >= v_threshold) != target
    error = (v_max - v_threshold) * wrong.to(v_max.dtype)
    return error.square().sum() / label.shape[0]


def first_spike_index(spikes: torch.Tensor) -> torch.Tensor:
    """spikes [*, T] (any neurons, T steps, a spike where > 0) -> bool [*, T], True at
    each neuron's first spike only (the seed's softbp.functional.first_spike_index)."""
    fired = spikes > 0
    return fired & (fired.cumsum(dim=-1) == 1)


def first_spike_time(spikes: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """The step of each neuron's first spike along `dim` (time last by default, as
    `first_spike_index`), as a float; NO_SPIKE (-1) where it never fires. The same
    times as the Tempotron's "spikes" readout gives from the voltage."""
    fired = spikes > 0
    first = fired.to(torch.uint8).argmax(dim=dim)  # the first True; 0 where none
    dtype = spikes.dtype if spikes.is_floating_point() else torch.get_default_dtype()
    return first.to(dtype).masked_fill_(~fired.any(dim=dim), NO_SPIKE)
