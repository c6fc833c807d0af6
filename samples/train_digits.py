"""Train samples/digits_mlp.snn on scikit-learn's bundled 8×8 digits with surrogate gradients.

    python samples/train_digits.py [--epochs 30] [--batch 64] [--lr 2e-3]

80/20 split with seed 0; prints a progress bar per epoch and the held-out accuracy.
Runs unchanged under `torchrun --nproc_per_node=N` (DistributedDataParallel, gloo on
CPU, nccl on GPU); each rank trains on its shard of every epoch.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from rich.progress import Progress
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.nn.parallel import DistributedDataParallel

import snnc

NET = Path(__file__).with_name("digits_mlp.snn")


def data(device: torch.device):
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    return x_train.to(device), x_test.to(device), y_train.to(device), y_test.to(device)


def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        net.reset()
        correct = (net(x).argmax(1) == y).float().mean().item()
    net.train()
    return correct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--save", type=Path, help="write the trained state_dict here")
    args = parser.parse_args()

    distributed = "WORLD_SIZE" in os.environ
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)

    torch.manual_seed(0)
    Net = snnc.compile(NET)
    net = Net().to(device)
    model = DistributedDataParallel(net) if distributed else net
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    x_train, x_test, y_train, y_test = data(device)

    with Progress(disable=rank != 0) as progress:
        task = progress.add_task("training", total=args.epochs)
        for epoch in range(args.epochs):
            order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(epoch))
            shard = order[rank::world].to(device)
            for start in range(0, len(shard), args.batch):
                index = shard[start:start + args.batch]
                net.reset()
                rate = model(x_train[index])
                loss = torch.nn.functional.cross_entropy(rate * 10.0, y_train[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            progress.update(task, advance=1,
                            description=f"epoch {epoch + 1}/{args.epochs} loss {loss.item():.3f}")

    if rank == 0:
        print(f"held-out accuracy: {accuracy(net, x_test, y_test):.4f}")
        if args.save:
            torch.save(net.state_dict(), args.save)
    if distributed:
        checksum = torch.cat([p.detach().flatten() for p in net.parameters()]).sum()
        print(f"rank {rank} weight checksum: {checksum.item():.10f}")
        leave_distributed()


def leave_distributed() -> None:
    """End a torchrun rank without the abort at exit that gloo's worker threads can cause.

    Every backward stashes a Python object (its contextvars context) in the thread-local
    state that DDP's allreduce works copy. A gloo worker thread drops finished works
    later; one that drops the last reference while the interpreter shuts down must take
    the GIL, and Python ends such a thread inside the work's destructor: std::terminate,
    "terminate called without an active exception". destroy_process_group() cannot join
    those threads, as DDP keeps the group alive. So, once no rank talks to another any
    more (the barrier), the rank flushes its output and exits at once, without the
    interpreter's teardown that the threads would race with."""
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
