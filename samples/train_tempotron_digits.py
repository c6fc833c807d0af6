"""Train samples/tempotron_digits.snn (10 Tempotrons on Gaussian-tuning spike times of
scikit-learn's bundled 8×8 digits) with the seed's Tempotron MSE loss and Adam.

    python samples/train_tempotron_digits.py [--epochs 20] [--batch 64] [--lr 1e-2]

80/20 split with seed 0; a progress bar over the epochs, the held-out accuracy at the
end (the class is the Tempotron whose voltage peaks highest).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from rich.progress import Progress
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import snnc
from snnc.functional import tempotron_mse_loss

NET = Path(__file__).with_name("tempotron_digits.snn")
CLASSES = 10


def data():
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    return train_test_split(x, y, test_size=0.2, random_state=0)


def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (net(x).argmax(1) == y).float().mean().item()


def train(epochs: int = 20, batch: int = 64, lr: float = 1e-2, show: bool = True
          ) -> tuple[torch.nn.Module, float]:
    """The trained network and its held-out accuracy."""
    torch.manual_seed(0)
    net = snnc.compile(NET)()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    x_train, x_test, y_train, y_test = data()
    with Progress(disable=not show) as progress:
        task = progress.add_task("training", total=epochs)
        for epoch in range(epochs):
            order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(epoch))
            for start in range(0, len(order), batch):
                index = order[start:start + batch]
                loss = tempotron_mse_loss(net(x_train[index]), y_train[index], CLASSES)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            progress.update(task, advance=1, description=f"epoch {epoch + 1}/{epochs} "
                            f"loss {loss.item():.4f} held-out {accuracy(net, x_test, y_test):.3f}")
    return net, accuracy(net, x_test, y_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    args = parser.parse_args()
    _, held_out = train(args.epochs, args.batch, args.lr)
    print(f"held-out accuracy: {held_out:.3f}")


if __name__ == "__main__":
    main()
