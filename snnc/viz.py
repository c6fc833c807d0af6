"""Figures of spikes, rates and states, for `snnc run --plot` and for notebooks.

Functions return a matplotlib Figure built without pyplot: no window opens, nothing is
kept in pyplot's global list of figures, and the caller decides where it goes
(`fig.savefig("run.png")`, or a notebook's display). `plot_1d_spikes`, `plot_2d_heatmap`,
`plot_2d_bar_in_3d` and `plot_2d_spiking_feature_map` keep the names and the parameters of
SpikingFlow's `visualizing` functions.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

MAX_RASTER_NEURONS = 500  # per population: more rows than a figure has pixels for
MAX_TRACES = 5            # voltage (or other state) traces per recorded variable
MAX_TRACED_NEURONS = 64   # above, a recorded state is drawn as a heat map, not traces
RATE_BIN_MS = 5.0         # the finest bin of a population's rate over time
MAX_RATE_BINS = 100       # a long run gets wider bins instead of more of them
MAX_LABELLED_RATES = 32   # neurons whose rate is written into plot_1d_spikes' rate map
WEIGHT_BINS = 40          # bins of a connection's weight distribution over time


def as_numpy(values) -> np.ndarray:
    """A tensor (any device, with or without grad) or array-like as a numpy array."""
    if hasattr(values, "detach"):
        return values.detach().cpu().numpy()
    return np.asarray(values)


# ------------------------------------------------------------------ numbers
def spiking_rates(spikes) -> np.ndarray:
    """Each neuron's fraction of steps with a spike: spikes [N, T] -> [N]."""
    return as_numpy(spikes).astype(np.float64).mean(axis=1)


def rate_bin_steps(steps: int, dt_ms: float) -> int:
    """Steps per bin of a rate over time: about 5 ms, or steps / 100 when that is wider."""
    return max(1, round(RATE_BIN_MS / dt_ms), steps // MAX_RATE_BINS)


@dataclass(frozen=True)
class SpikeTrains:
    """The spikes of `neurons` neurons over `steps` steps as events: the step and the
    neuron of each spike, in time order. What a raster and a rate need, in memory in
    proportion to the spikes."""

    steps: int
    neurons: int
    times: np.ndarray
    cells: np.ndarray

    @classmethod
    def of_dense(cls, spikes) -> SpikeTrains:
        """From spikes [T, N] of 0 and 1."""
        spikes = as_numpy(spikes)
        times, cells = np.nonzero(spikes)
        return cls(spikes.shape[0], spikes.shape[1], times, cells)

    @classmethod
    def of_monitor(cls, values, sample: int) -> SpikeTrains:
        """From batch sample `sample` of a spike monitor [steps, B, *shape]: dense, or a
        sparse COO tensor (snnc run's, a Simulator's run(sparse_spikes=True))."""
        if not getattr(values, "is_sparse", False):
            return cls.of_dense(_per_neuron(values, sample))
        indices = values.coalesce().indices().cpu().numpy()
        mine = indices[:, indices[1] == sample]
        shape = tuple(values.shape[2:])
        cells = np.ravel_multi_index(tuple(mine[2:]), shape) if shape else np.zeros_like(mine[0])
        return cls(values.shape[0], int(np.prod(shape)), mine[0], cells)


def population_rate(spikes, dt_ms: float, bin_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """A population's rate over time from spikes [T, N] (or SpikeTrains): (bin edges in
    ms, Hz per bin), each bin its spikes / (neurons · bin width); a last, shorter bin is
    divided by its own width."""
    trains = spikes if isinstance(spikes, SpikeTrains) else SpikeTrains.of_dense(spikes)
    starts = np.arange(0, trains.steps, bin_steps)
    counts = np.bincount(trains.times // bin_steps, minlength=len(starts))
    edges = np.append(starts, trains.steps)
    return edges * dt_ms, counts / (trains.neurons * np.diff(edges) * dt_ms / 1000.0)


def shown_neurons(neurons: int, limit: int) -> np.ndarray:
    """Indices of at most `limit` neurons spread evenly over 0 .. neurons - 1."""
    if neurons <= limit:
        return np.arange(neurons)
    return np.unique(np.linspace(0, neurons - 1, limit).round().astype(int))


# ------------------------------------------------------------------ SpikingFlow's figure
def plot_1d_spikes(spikes, title: str, xlabel: str, ylabel: str, int_x_ticks=True,
                   int_y_ticks=True, plot_spiking_rate=True,
                   spiking_rate_map_title="spiking rate", dpi=200) -> Figure:
    """N spike trains of T steps (spikes [N, T] of 0 and 1) as a raster, neuron 0 at the
    top as in SpikingFlow, and beside it each neuron's spiking rate (fraction of steps
    with a spike) as a colour map, its values written in when there are few neurons."""
    spikes = as_numpy(spikes)
    if spikes.ndim != 2:
        raise ValueError(f"plot_1d_spikes wants spikes [N, T], got shape {list(spikes.shape)}")
    neurons, steps = spikes.shape
    fig = Figure(dpi=dpi, layout="constrained")
    if plot_spiking_rate:
        grid = fig.add_gridspec(1, 5)
        raster, rate_map = fig.add_subplot(grid[0, :4]), fig.add_subplot(grid[0, 4])
    else:
        raster = fig.add_subplot()
    rows, times = np.nonzero(spikes)
    raster.plot(times, rows, linestyle="none", marker="|", markersize=_marker_size(neurons),
                color="tab:blue")
    raster.set(title=title, xlabel=xlabel, ylabel=ylabel,
               xlim=(-0.5, steps - 0.5), ylim=(neurons - 0.5, -0.5))
    for axis, integer in ((raster.xaxis, int_x_ticks), (raster.yaxis, int_y_ticks)):
        axis.set_major_locator(MaxNLocator(integer=integer))
        axis.set_minor_locator(NullLocator())
    if plot_spiking_rate:
        _draw_rate_map(rate_map, spiking_rates(spikes), spiking_rate_map_title)
    return fig


def plot_2d_heatmap(array, title: str, xlabel: str, ylabel: str, int_x_ticks=True,
                    int_y_ticks=True, plot_colorbar=True, colorbar_y_label="magnitude",
                    dpi=200) -> Figure:
    """Any array [N, M] as a heat map, row i at height i (row 0 at the top, as in
    SpikingFlow) and column j at x = j, with a colour bar of the values beside it: the
    voltages v[i][j] of neurons i at steps j, say."""
    array = as_numpy(array)
    if array.ndim != 2 or not array.size:
        raise ValueError(f"plot_2d_heatmap wants a non-empty array [N, M], "
                         f"got shape {list(array.shape)}")
    fig = Figure(dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    image = _heatmap(ax, array)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    _integer_ticks(ax, int_x_ticks, int_y_ticks)
    if plot_colorbar:
        bar = fig.colorbar(image, ax=ax)
        bar.ax.set_ylabel(colorbar_y_label, rotation=90)
        bar.ax.yaxis.set_minor_locator(NullLocator())
    return fig


def _heatmap(ax, array: np.ndarray, extent: tuple | None = None):
    """array [N, M] as an image, row 0 at the top (plot_2d_heatmap's, and plot_run's
    panel of a state with many neurons)."""
    return ax.imshow(array, cmap="viridis", aspect="auto", interpolation="nearest",
                     extent=extent)


def plot_2d_bar_in_3d(array, title: str, xlabel: str, ylabel: str, zlabel: str,
                      int_x_ticks=True, int_y_ticks=True, int_z_ticks=False,
                      dpi=200) -> Figure:
    """Any array [N, M] as bars in 3-D: row i a row of M bars at x = i (one colour per
    row), bar j of it at y = j, as tall as array[i][j]; the spiking rates of N neurons
    over M epochs, say. `ax.containers[i].datavalues` are row i's heights."""
    array = as_numpy(array)
    if array.ndim != 2 or not array.size:
        raise ValueError(f"plot_2d_bar_in_3d wants a non-empty array [N, M], "
                         f"got shape {list(array.shape)}")
    rows, columns = array.shape
    fig = Figure(dpi=dpi, layout="constrained")
    ax = fig.add_subplot(projection="3d")
    for i in range(rows):
        ax.bar(np.arange(columns), array[i], zs=i, zdir="x", color=f"C{i % 10}", alpha=0.8)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, zlabel=zlabel,
           xlim=(-0.5, rows - 0.5), ylim=(-0.5, columns - 0.5))
    _integer_ticks(ax, int_x_ticks, int_y_ticks)
    ax.zaxis.set_major_locator(MaxNLocator(integer=int_z_ticks))
    return fig


def plot_2d_spiking_feature_map(spikes, nrows, ncols, title: str, dpi=200) -> Figure:
    """C spike maps of W x H (spikes [C, W, H] of 0 and 1, a convolution's output) as a
    grid of nrows x ncols small images, map c in row c // ncols, column c % ncols; a
    spike white on black. Values between 0 and 1 (rates) are shades of grey. A grid with
    more cells than maps leaves the last ones empty."""
    spikes = as_numpy(spikes)
    if spikes.ndim != 3 or not spikes.size:
        raise ValueError(f"plot_2d_spiking_feature_map wants spikes [C, W, H], "
                         f"got shape {list(spikes.shape)}")
    if nrows < 1 or ncols < 1 or nrows * ncols < len(spikes):
        raise ValueError(f"plot_2d_spiking_feature_map: {len(spikes)} maps do not fit in "
                         f"{nrows} x {ncols}")
    fig = Figure(dpi=dpi, layout="constrained")
    cells = fig.subplots(nrows, ncols, squeeze=False)
    for c, ax in enumerate(cells.flat):
        if c < len(spikes):
            ax.imshow(spikes[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            ax.set_axis_off()
    if title is not None:
        fig.suptitle(title)
    return fig


def feature_map_grid(maps: int) -> tuple[int, int]:
    """(nrows, ncols) for plot_2d_spiking_feature_map: the squarest grid, a little wider
    than tall, with no empty row: 48 maps -> (6, 8), 6 -> (2, 3), 7 -> (2, 4)."""
    if maps < 1:
        raise ValueError(f"feature_map_grid wants at least one map, got {maps}")
    ncols = min(maps, int(np.ceil(np.sqrt(maps * 4 / 3))))
    return -(-maps // ncols), ncols


def _integer_ticks(ax, int_x_ticks: bool, int_y_ticks: bool) -> None:
    for axis, integer in ((ax.xaxis, int_x_ticks), (ax.yaxis, int_y_ticks)):
        axis.set_major_locator(MaxNLocator(integer=integer))
        axis.set_minor_locator(NullLocator())


def _draw_rate_map(ax, rates: np.ndarray, title: str) -> None:
    ax.imshow(rates[:, None], cmap="magma", aspect="auto", vmin=0, vmax=max(rates.max(), 1e-9))
    if len(rates) <= MAX_LABELLED_RATES:
        for i, rate in enumerate(rates):
            ax.text(0, i, f"{rate:.2f}", ha="center", va="center", fontsize="small",
                    color="white" if rate < 0.5 * rates.max() else "black")
    ax.get_xaxis().set_visible(False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)


def _marker_size(rows: int) -> float:
    """Tick marks about as tall as a raster row, for 10 rows or 500."""
    return float(np.clip(150 / max(rows, 1), 2.5, 6))


# ------------------------------------------------------------------ a whole run
def plot_run(monitors: Mapping[str, object], dt_ms: float, title: str | None = None,
             max_neurons: int = MAX_RASTER_NEURONS, sample: int = 0,
             weights: Mapping[str, object] | None = None, weight_every: int = 1000
             ) -> Figure:
    """The figure of `snnc run --plot`: from monitors {"pop.var": [steps, B, *shape]}, one
    spike raster per population with spikes recorded (neurons evenly subsampled above
    `max_neurons`), under them each population's rate over time, then a few neurons'
    traces of every other recorded variable; all of batch sample `sample`. `weights`
    {"conn.weight": [samples, *shape]}, sampled every `weight_every` steps, add one panel
    each: the distribution of the connection's weights over time."""
    weights = dict(weights or {})
    spikes = {key.removesuffix(".spikes"): SpikeTrains.of_monitor(value, sample)
              for key, value in monitors.items() if key.endswith(".spikes")}
    states = {key: _per_neuron(value, sample)
              for key, value in monitors.items() if not key.endswith(".spikes")}
    if not spikes and not states:
        raise ValueError("plot_run: no monitors to plot")
    ratios = [2.0] * len(spikes) + [1.5] * bool(spikes) + [1.5] * (len(states) + len(weights))
    fig = Figure(figsize=(10, 1.2 + 1.6 * sum(ratios)), dpi=120, layout="constrained")
    axes = list(fig.subplots(len(ratios), 1, sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": ratios})[:, 0])
    colours = {name: f"C{i % 10}" for i, name in enumerate(spikes)}
    for (name, values), ax in zip(spikes.items(), axes, strict=False):
        _draw_raster(ax, name, values, dt_ms, max_neurons, colours[name])
    if spikes:
        _draw_rates(axes[len(spikes)], spikes, dt_ms, colours)
    below = axes[len(spikes) + bool(spikes):]
    for (key, values), ax in zip(states.items(), below[:len(states)], strict=True):
        if values.shape[1] > MAX_TRACED_NEURONS:
            _draw_state_map(fig, ax, key, values, dt_ms)
        else:
            _draw_traces(ax, key, values, dt_ms)
    for (key, values), ax in zip(weights.items(), below[len(states):], strict=True):
        _draw_weights(fig, ax, key, as_numpy(values), weight_every * dt_ms)
    axes[-1].set_xlabel("time (ms)")
    steps = next(iter(spikes.values())).steps if spikes else len(next(iter(states.values())))
    axes[-1].set_xlim(0, steps * dt_ms)
    if title:
        fig.suptitle(title)
    return fig


def _draw_state_map(fig: Figure, ax, key: str, values: np.ndarray, dt_ms: float) -> None:
    """A state of many neurons, [steps, neurons], as plot_2d_heatmap draws it: neurons
    down (evenly subsampled above MAX_RASTER_NEURONS, each row at its own index), time in
    ms across."""
    neurons = values.shape[1]
    shown = shown_neurons(neurons, MAX_RASTER_NEURONS)
    image = _heatmap(ax, values[:, shown].T,
                     extent=(0, values.shape[0] * dt_ms, neurons - 0.5, -0.5))
    fig.colorbar(image, cax=ax.inset_axes((1.01, 0.0, 0.015, 1.0)),
                 label=key.split(".", 1)[1])
    ax.set_ylabel("neuron" if len(shown) == neurons
                  else f"neuron\n({len(shown)} of {neurons:,})")
    ax.set_title(key, loc="left", fontsize="medium")


def _draw_weights(fig: Figure, ax, key: str, values: np.ndarray, every_ms: float) -> None:
    """A connection's weights over time: per sample (a column ending at its time), the
    fraction of its synapses in each of WEIGHT_BINS bins between the least and the
    largest weight it ever had."""
    flat = values.reshape(len(values), -1)
    if not len(flat):
        ax.set_title(f"{key}: no sample in this run", loc="left", fontsize="medium")
        return
    low, high = float(flat.min()), float(flat.max())
    high = high if high > low else low + 1.0
    edges = np.linspace(low, high, WEIGHT_BINS + 1)
    shares = np.stack([np.histogram(row, bins=edges)[0] / row.size for row in flat], axis=1)
    times = np.arange(len(flat) + 1) * every_ms
    mesh = ax.pcolormesh(times, edges, shares, cmap="viridis", shading="flat")
    # beside the panel, not taking its width: the time axes of all panels stay aligned
    fig.colorbar(mesh, cax=ax.inset_axes((1.01, 0.0, 0.015, 1.0)), label="fraction")
    ax.set_ylabel("weight")
    ax.set_title(f"{key}: distribution every {every_ms:g} ms", loc="left", fontsize="medium")


def _per_neuron(values, sample: int) -> np.ndarray:
    """One batch sample of a monitor [steps, B, *shape] as [steps, neurons]."""
    values = as_numpy(values)
    return values[:, sample].reshape(values.shape[0], -1)


def _draw_raster(ax, name: str, trains: SpikeTrains, dt_ms: float, max_neurons: int,
                 colour: str) -> None:
    neurons = trains.neurons
    shown = shown_neurons(neurons, max_neurons)
    drawn = np.isin(trains.cells, shown)
    ax.plot(trains.times[drawn] * dt_ms, trains.cells[drawn], linestyle="none", marker="|",
            color=colour, markersize=_marker_size(len(shown)), markeredgewidth=1.0,
            rasterized=True)
    ax.set_ylim(-0.5, neurons - 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    label = "neuron" if len(shown) == neurons else f"neuron\n({len(shown)} of {neurons:,})"
    ax.set_ylabel(label)
    ax.set_title(f"{name}: {len(trains.times):,} spikes", loc="left", fontsize="medium")


def _draw_rates(ax, spikes: dict[str, SpikeTrains], dt_ms: float,
                colours: dict[str, str]) -> None:
    bin_steps = rate_bin_steps(next(iter(spikes.values())).steps, dt_ms)
    for name, values in spikes.items():
        edges, rates = population_rate(values, dt_ms, bin_steps)
        ax.stairs(rates, edges, baseline=None, color=colours[name], label=name, linewidth=1.2)
    ax.set_ylabel("rate (Hz)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"population rate ({bin_steps * dt_ms:g} ms bins)", loc="left",
                 fontsize="medium")
    _legend_above(ax, ncols=min(len(spikes), 6))


def _draw_traces(ax, key: str, values: np.ndarray, dt_ms: float) -> None:
    times = np.arange(values.shape[0]) * dt_ms
    for neuron in shown_neurons(values.shape[1], MAX_TRACES):
        ax.plot(times, values[:, neuron], linewidth=0.9, label=f"neuron {neuron}")
    ax.set_ylabel(key.split(".", 1)[1])
    ax.set_title(key, loc="left", fontsize="medium")
    _legend_above(ax, ncols=MAX_TRACES)


def _legend_above(ax, ncols: int) -> None:
    """The legend on the title's line, right-aligned: it never covers a curve."""
    ax.legend(loc="lower right", bbox_to_anchor=(1, 1), ncols=ncols, frameon=False,
              fontsize="small", borderaxespad=0.1, handlelength=1.5)
