"""A model split across devices and run as a pipeline (SpikingFlow's ``softbp.ModelPipeline``).

A model too big for one GPU is cut into stages, each on its own device, added in order
with ``append(module, device)``. ``forward(x, split_sizes)`` cuts the batch into
micro-batches that flow through the stages like a clock-driven pipeline: at tick ``s``
stage ``k`` works on micro-batch ``s - k``, so while stage ``k + 1`` works on micro-batch
``i - 1`` stage ``k`` already works on micro-batch ``i``. ``constant_forward(x, T)`` is
the fast path for a constant input (a network whose first layer is its encoder): the
pipeline is filled once and kept running for T time steps, stage ``k`` working on time
step ``s - k`` at tick ``s``, and ``x`` is copied to the first device only once.

How it runs in parallel. Everything runs in this one process and thread, in a fixed
order, so results are deterministic and equal those of the stages called one after the
other. On CUDA devices the kernels of one tick are only *queued* by the host; each GPU
runs the queue of its own stream, so the stages of one tick run at the same time on
their GPUs (the design the seed relies on: "these lines are written one after the other
but run in parallel, since each works on its own data on its own GPU"). The copy of a
stage's output to the next device is ordered after the work that made it by PyTorch
itself (a copy from a GPU to the host makes the host wait for it, so a CPU stage between
GPU stages stops the overlap there). Backward needs nothing from here: the autograd
engine runs one worker thread per device, so the backward passes of the stages overlap
as well. On CPU devices each call returns only when its work is done, so the schedule is
the same but nothing overlaps.
Host threads would not help (the GIL, and the kernel launches are already asynchronous)
and would cost determinism, so there are none; neither are extra CUDA streams, which
would only matter with several stages on one device.

Why not ``torch.distributed.pipelining``. Its ``PipelineStage`` and schedules
(``ScheduleGPipe``, ``Schedule1F1B``, ...) are built for one stage per *rank*: they need
an initialised process group and exchange activations with ``torch.distributed`` P2P
send/recv between processes. This class is a single-process pipeline over several devices
(SpikingFlow's design), where tensors simply move with ``.to(device)``; in addition, those
schedules run the loss and backward inside ``step()`` instead of returning outputs with
their graph, their splitting takes a number of chunks and not split sizes, and their
tracing front end (``pipeline()``, via ``torch.export``) cannot follow stages that keep
Python-side state between calls, as snnc's populations do, which ``constant_forward``
needs. So the schedule is written here; it is a few lines.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

__all__ = ["ModelPipeline"]


def as_device(device: str | int | torch.device) -> torch.device:
    """A stage's device: a torch.device, "cpu", "cuda:1", or SpikingFlow's bare GPU id
    (2 or "2" -> cuda:2)."""
    if isinstance(device, torch.device):
        return device
    if isinstance(device, bool):
        raise TypeError(f"a device is a torch.device, a string or a GPU index, not {device!r}")
    if isinstance(device, int) or (isinstance(device, str) and device.strip().isdigit()):
        return torch.device("cuda", int(device))
    if isinstance(device, str):
        return torch.device(device.strip())
    raise TypeError(f"a device is a torch.device, a string or a GPU index, not {device!r}")


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """x on `device`; copies to a GPU are queued without waiting (the copy is ordered on
    the streams), copies to the host wait for their data, as a non-blocking one would not."""
    if x.device == device:
        return x
    return x.to(device, non_blocking=device.type == "cuda")


class ModelPipeline(nn.Module):
    """Stages on devices, run as a pipeline (SpikingFlow's ``softbp.ModelPipeline``).

    Subclass it and ``append`` the stages in ``__init__`` (as in the seed), or pass
    ``(module, device)`` pairs to the constructor. Each stage takes one tensor and returns
    one tensor; its output is moved to the next stage's device, and the result of
    ``forward``/``constant_forward`` lives on the last stage's device.
    """

    def __init__(self, stages: Iterable[tuple[nn.Module, str | int | torch.device]] = ()):
        super().__init__()
        self.module_list = nn.ModuleList()
        self.devices: list[torch.device] = []
        for module, device in stages:
            self.append(module, device)

    def append(self, nn_module: nn.Module, device: str | int | torch.device) -> None:
        """Add a stage that runs on `device` ("cpu", "cuda:1", a torch.device, or a bare GPU
        id such as 2 or "2" as in SpikingFlow). Stages run in the order they are added;
        the module's parameters and buffers are moved to `device`."""
        if not isinstance(nn_module, nn.Module):
            raise TypeError(f"a stage is an nn.Module, not {type(nn_module).__name__}")
        device = as_device(device)
        self.module_list.append(nn_module.to(device))
        self.devices.append(device)

    def __len__(self) -> int:
        return len(self.module_list)

    # -- the schedule --------------------------------------------------------------------

    def _check_stages(self) -> None:
        if not len(self.module_list):
            raise ValueError("the pipeline has no stages: append(module, device) first")

    def _stage(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Stage k on its input, moved to its device first."""
        return self.module_list[k](to_device(x, self.devices[k]))

    def _run(self, inputs: Sequence[torch.Tensor] | None, constant: torch.Tensor | None,
             count: int) -> list[torch.Tensor]:
        """Run `count` items through the stages: at tick s stage k works on item s - k.
        Item i is inputs[i], or `constant` for every i. Within a tick the last stage is
        queued first, so every stage reads what the stage before it made at the last tick
        (a pipeline register), and each stage sees its items in order 0, 1, ..., which
        keeps stages with state across calls right."""
        stages = len(self.module_list)
        held: list[torch.Tensor | None] = [None] * stages   # output of stage k, last tick
        outputs: list[torch.Tensor] = []
        for tick in self.schedule(count):
            for k, item in tick:
                if k == 0:
                    x = constant if inputs is None else inputs[item]
                else:
                    x, held[k - 1] = held[k - 1], None
                y = self._stage(k, x)
                if k == stages - 1:
                    outputs.append(y)
                else:
                    held[k] = y
        return outputs

    # -- the two ways to run it ------------------------------------------------------------

    @staticmethod
    def _split_sizes(batch: int, split_sizes: int | Sequence[int]) -> list[int]:
        """The micro-batch sizes: an int cuts the batch into chunks of that size (the last
        one smaller when it does not divide the batch; one chunk when it is >= the batch),
        a sequence gives every size, summing to the batch."""
        if isinstance(split_sizes, bool):
            raise ValueError(f"split_sizes must be a positive int or a list of them, "
                             f"not {split_sizes!r}")
        if isinstance(split_sizes, int):
            if split_sizes < 1:
                raise ValueError(f"split_sizes must be positive, not {split_sizes}")
            return [min(split_sizes, batch - start) for start in range(0, batch, split_sizes)]
        try:
            sizes = list(split_sizes)
        except TypeError:
            raise ValueError(f"split_sizes must be a positive int or a list of them, "
                             f"not {split_sizes!r}") from None
        if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                            for s in sizes):
            raise ValueError(f"split_sizes must be positive ints, not {sizes!r}")
        if sum(sizes) != batch:
            raise ValueError(f"split_sizes {sizes} sum to {sum(sizes)}, "
                             f"but the input has {batch} along the split dimension")
        return sizes

    def forward(self, x: torch.Tensor, split_sizes: int | Sequence[int],
                dim: int = 0) -> torch.Tensor:
        """Cut x along `dim` (0, the batch, as in SpikingFlow; 1 for snnc's [T, B, ...]
        inputs) into micro-batches of `split_sizes` (an int: chunks of that size, the last
        one smaller if need be; or a list of sizes summing to x.shape[dim]), run them
        through the pipeline, and join the outputs along `dim` on the last stage's device.
        Equal to the stages called one after the other on the whole x, for stages that
        treat the samples of a batch independently and keep no state between calls
        (reset a stateful network between micro-batches yourself, or use constant_forward).
        Gradients flow back to x and every stage's parameters. Raises ValueError on bad
        split sizes."""
        self._check_stages()
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a tensor, not {type(x).__name__}")
        if x.dim() == 0:
            raise ValueError("x must have a dimension to split")
        batch = x.shape[dim]
        if batch == 0:
            raise ValueError(f"x is empty along dimension {dim}")
        sizes = self._split_sizes(batch, split_sizes)
        chunks = torch.split(x, sizes, dim=dim)
        outputs = self._run(chunks, None, len(chunks))
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=dim)

    def constant_forward(self, x: torch.Tensor, T: int,
                         reduce: bool | str = True) -> torch.Tensor:
        """Run the pipeline T times on the same input x (frequency-coded SNNs whose first
        layer encodes), filling the pipeline once and keeping it running: stage k works on
        step t while stage k + 1 works on step t - 1, and x goes to the first device once.
        Each stage sees steps 0, 1, ..., T - 1 in order, so stages whose state carries
        across calls (snnc populations, SpikingFlow's neurons) give what T calls of the
        whole model in a row give. reduce=True (or "sum"): the sum of the T outputs, as
        SpikingFlow's reduce=True; "mean": their mean; False: the T outputs stacked,
        [T, *output shape]. On the last stage's device."""
        self._check_stages()
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"T must be a positive int, not {T!r}")
        if reduce not in (True, False, "mean", "sum"):
            raise ValueError(f"reduce must be True, False, 'mean' or 'sum', not {reduce!r}")
        x = to_device(x, self.devices[0])
        outputs = self._run(None, x, T)
        if reduce is False:
            return torch.stack(outputs)
        total = outputs[0]
        for y in outputs[1:]:
            total = total + y
        return total / T if reduce == "mean" else total

    def schedule(self, count: int) -> list[list[tuple[int, int]]]:
        """The (stage, item) pairs of each tick for `count` micro-batches or time steps, in
        the order they are queued: what forward and constant_forward run."""
        stages = len(self.module_list)
        return [[(k, tick - k) for k in range(min(tick, stages - 1), -1, -1)
                 if tick - k < count] for tick in range(count + stages - 1)]

    def extra_repr(self) -> str:
        return "devices: " + ", ".join(str(d) for d in self.devices)
