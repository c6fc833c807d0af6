"""snnc.viz on synthetic spikes: the numbers it draws and the figures' structure."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from snnc.viz import (
    feature_map_grid,
    plot_1d_spikes,
    plot_2d_bar_in_3d,
    plot_2d_heatmap,
    plot_2d_spiking_feature_map,
    plot_run,
    population_rate,
    rate_bin_steps,
    shown_neurons,
    spiking_rates,
)


def poisson(steps: int, neurons: int, p: float, seed: int = 0) -> torch.Tensor:
    """Spikes [steps, 1, neurons] as a monitor holds them."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, 1, neurons, generator=g) < p).float()


def test_population_rate_is_spikes_per_neuron_and_second_in_each_bin():
    spikes = np.zeros((7, 2))
    spikes[0, 0] = spikes[2, 1] = spikes[2, 0] = 1  # bin [0, 3): 3 spikes
    spikes[4, 1] = 1                                # bin [3, 6): 1 spike
    spikes[6, 0] = 1                                # bin [6, 7), one step wide: 1 spike
    edges, rates = population_rate(spikes, dt_ms=0.5, bin_steps=3)
    assert edges.tolist() == [0.0, 1.5, 3.0, 3.5]
    # spikes / (neurons · width in s)
    assert rates == pytest.approx([3 / (2 * 1.5e-3), 1 / (2 * 1.5e-3), 1 / (2 * 0.5e-3)])


def test_rate_bins_are_5_ms_or_a_hundredth_of_the_run():
    assert rate_bin_steps(200, 1.0) == 5
    assert rate_bin_steps(1000, 0.1) == 50
    assert rate_bin_steps(100_000, 0.1) == 1000
    assert rate_bin_steps(10, 10.0) == 1


def test_spiking_rates_are_fractions_of_steps():
    assert spiking_rates([[1, 0, 1, 0], [0, 0, 0, 1]]).tolist() == [0.5, 0.25]


def test_shown_neurons_spread_over_the_population():
    shown = shown_neurons(3200, 500)
    assert len(shown) == 500 and shown[0] == 0 and shown[-1] == 3199
    assert np.all(np.diff(shown) > 0)
    assert shown_neurons(20, 500).tolist() == list(range(20))


def test_plot_1d_spikes_as_spikingflow():
    spikes = (np.random.default_rng(0).random((8, 50)) < 0.2).astype(float)
    fig = plot_1d_spikes(spikes, "spikes of neurons", "simulating step", "neuron index",
                         spiking_rate_map_title="spiking rate")
    raster, rate_map = fig.axes
    assert raster.get_title() == "spikes of neurons"
    assert raster.get_xlabel() == "simulating step"
    assert raster.get_ylabel() == "neuron index"
    assert rate_map.get_title() == "spiking rate"
    # neuron 0 at the top, as SpikingFlow draws it
    assert raster.get_ylim() == (7.5, -0.5)
    written = [float(t.get_text()) for t in rate_map.texts]
    assert written == pytest.approx(spikes.mean(axis=1), abs=0.005)
    x, y = raster.lines[0].get_data()
    assert len(x) == spikes.sum()
    assert len(plot_1d_spikes(spikes, "t", "x", "y", plot_spiking_rate=False).axes) == 1


def test_plot_1d_spikes_wants_two_axes():
    with pytest.raises(ValueError, match=r"\[N, T\]"):
        plot_1d_spikes(np.zeros(5), "t", "x", "y")


def monitors() -> dict[str, torch.Tensor]:
    return {"big.spikes": poisson(400, 3200, 0.01, seed=1),
            "small.spikes": poisson(400, 20, 0.05, seed=2),
            "small.v": torch.randn(400, 1, 20).cumsum(0)}


def test_plot_run_has_a_raster_per_population_then_rates_then_traces():
    mon = monitors()
    fig = plot_run(mon, dt_ms=0.5, title="net: 400 steps")
    big, small, rates, v = fig.axes
    assert big.get_title(loc="left") == f"big: {int(mon['big.spikes'].sum()):,} spikes"
    assert "500 of 3,200" in big.get_ylabel()
    assert small.get_ylabel() == "neuron"
    assert rates.get_ylabel() == "rate (Hz)"
    assert rates.get_title(loc="left") == "population rate (5 ms bins)"
    assert [t.get_text() for t in rates.get_legend().get_texts()] == ["big", "small"]
    assert v.get_title(loc="left") == "small.v"
    assert len(v.lines) == 5
    assert v.get_xlabel() == "time (ms)"
    assert v.get_xlim() == (0.0, 200.0)
    assert fig.get_suptitle() == "net: 400 steps"


def test_plot_run_rates_are_the_hand_computed_ones():
    mon = monitors()
    fig = plot_run(mon, dt_ms=0.5)
    drawn = fig.axes[2].patches[1]  # the stairs of `small`
    values, edges = drawn.get_data().values, drawn.get_data().edges
    spikes = mon["small.spikes"][:, 0].numpy()
    assert edges[:3].tolist() == [0.0, 5.0, 10.0]
    assert values[0] == pytest.approx(spikes[:10].sum() / (20 * 5e-3))


def test_plot_run_subsamples_big_populations():
    fig = plot_run(monitors(), dt_ms=0.5)
    _, rows = fig.axes[0].lines[0].get_data()
    assert len(np.unique(rows)) <= 500
    _, rows = fig.axes[1].lines[0].get_data()
    spikes = monitors()["small.spikes"]
    assert len(rows) == spikes.sum()


def test_plot_run_draws_sparse_spike_monitors_as_the_dense_ones():
    """snnc run keeps spikes as sparse COO tensors: the same rasters and rates, of the
    sample asked for, as from the dense monitors."""
    dense = {"big.spikes": torch.cat([poisson(400, 3200, 0.0), poisson(400, 3200, 0.01)],
                                     dim=1).reshape(400, 2, 40, 80),
             "small.spikes": torch.cat([poisson(400, 20, 0.2, seed=3),
                                        poisson(400, 20, 0.05, seed=2)], dim=1)}
    sparse = {key: values.to_sparse() for key, values in dense.items()}
    drawn = [plot_run(mon, dt_ms=0.5, sample=1).axes for mon in (dense, sparse)]
    for a, b in zip(*drawn, strict=True):
        assert a.get_title(loc="left") == b.get_title(loc="left")
        for la, lb in zip(a.lines, b.lines, strict=True):
            assert np.array_equal(la.get_xydata(), lb.get_xydata())
        for pa, pb in zip(a.patches, b.patches, strict=True):
            assert np.array_equal(pa.get_data().values, pb.get_data().values)
    assert drawn[1][1].get_title(loc="left") == \
        f"small: {int(dense['small.spikes'][:, 1].sum()):,} spikes"  # sample 1, not 0


def test_plot_run_png_is_not_blank():
    data = io.BytesIO()
    plot_run(monitors(), dt_ms=0.5).savefig(data, format="png")
    data.seek(0)
    image = imread(data)
    colours = np.unique(image.reshape(-1, image.shape[-1]), axis=0)
    assert len(colours) > 10


def test_plot_run_with_states_only_and_without_anything():
    fig = plot_run({"p.v": torch.zeros(10, 1, 3)}, dt_ms=1.0)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 3
    with pytest.raises(ValueError, match="no monitors"):
        plot_run({}, dt_ms=1.0)


def test_plot_run_draws_a_weight_distribution_over_time():
    """A connection's weights, sampled every 40 steps, as fractions per bin and sample:
    the panel's columns end at the samples' times, and each column sums to 1."""
    g = torch.Generator().manual_seed(3)
    start = torch.rand(1, 30, generator=g) * 0.5
    # spreading out to the edges, as STDP drives them
    weights = torch.stack([(start - 0.25) * (1 + k) + 0.25 for k in range(10)]).clamp(0, 1)
    fig = plot_run(monitors(), dt_ms=0.5, weights={"src->p.weight": weights},
                   weight_every=40)
    panel = fig.axes[4]
    assert panel.get_title(loc="left") == "src->p.weight: distribution every 20 ms"
    assert panel.get_ylabel() == "weight"
    mesh = panel.collections[0]
    shares = np.asarray(mesh.get_array()).reshape(40, 10)  # bins x samples
    assert shares.sum(axis=0) == pytest.approx(np.ones(10))
    assert panel.get_xlim() == (0.0, 200.0)
    x = mesh.get_coordinates()[0, :, 0]
    assert x.tolist() == pytest.approx(np.arange(11) * 20.0)
    # the first sample is spread over the middle bins, the last over the edges
    assert shares[[0, -1], -1].sum() > shares[[0, -1], 0].sum()


# ------------------------------------------------------------------ SpikingFlow's 2-D figures
def png_colours(fig) -> int:
    data = io.BytesIO()
    fig.savefig(data, format="png", dpi=60)
    data.seek(0)
    image = imread(data)
    return len(np.unique(image.reshape(-1, image.shape[-1]), axis=0))


def voltages(neurons: int = 6, steps: int = 20) -> np.ndarray:
    """v[i][j]: neuron i at step j, as SpikingFlow's examples hold them."""
    return np.random.default_rng(4).random((neurons, steps)).cumsum(axis=1)


def test_plot_2d_heatmap_as_spikingflow():
    v = voltages()
    fig = plot_2d_heatmap(array=v, title="voltage of neurons", xlabel="simulating step",
                          ylabel="neuron index", colorbar_y_label="voltage magnitude")
    assert fig.dpi == 200
    heatmap, colorbar = fig.axes
    assert heatmap.get_title() == "voltage of neurons"
    assert heatmap.get_xlabel() == "simulating step"
    assert heatmap.get_ylabel() == "neuron index"
    assert colorbar.get_ylabel() == "voltage magnitude"
    (image,) = heatmap.images
    assert np.array_equal(image.get_array(), v)
    # column j at x = j, row i at y = i with row 0 at the top
    assert image.get_extent() == [-0.5, 19.5, 5.5, -0.5]
    assert image.get_clim() == (v.min(), v.max())
    assert all(float(t).is_integer() for t in heatmap.get_xticks())
    assert all(float(t).is_integer() for t in heatmap.get_yticks())


def test_plot_2d_heatmap_options():
    fig = plot_2d_heatmap(torch.arange(6.0).reshape(2, 3), "t", "x", "y",
                          plot_colorbar=False, dpi=80)
    assert len(fig.axes) == 1 and fig.dpi == 80
    assert fig.axes[0].images[0].get_array().tolist() == [[0, 1, 2], [3, 4, 5]]
    fig = plot_2d_heatmap(voltages(), "t", "x", "y")
    assert fig.axes[1].get_ylabel() == "magnitude"


def test_plot_2d_bar_in_3d_as_spikingflow():
    rates = np.random.default_rng(5).random((4, 5))  # 4 neurons, 5 epochs
    fig = plot_2d_bar_in_3d(rates, title="spiking rates of output layer",
                            xlabel="neuron index", ylabel="training epoch",
                            zlabel="spiking rate")
    assert fig.dpi == 200
    (ax,) = fig.axes
    assert ax.name == "3d"
    assert ax.get_title() == "spiking rates of output layer"
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_zlabel()) == \
        ("neuron index", "training epoch", "spiking rate")
    # one row of bars per neuron, as tall as its rates, in the plane x = neuron
    assert len(ax.containers) == 4
    for i, bars in enumerate(ax.containers):
        assert np.array_equal(bars.datavalues, rates[i])
        for j, patch in enumerate(bars.patches):
            x, y, z = np.array(patch._segment3d, dtype=float).T
            assert np.all(x == i)
            assert y.min() < j < y.max()
            assert z.max() == pytest.approx(rates[i, j])
    colours = {tuple(bars.patches[0].get_facecolor()) for bars in ax.containers}
    assert len(colours) == 4
    assert all(float(t).is_integer() for t in ax.get_xticks())


def test_plot_2d_spiking_feature_map_as_spikingflow():
    spikes = (np.random.default_rng(6).random((48, 8, 8)) > 0.8).astype(float)
    fig = plot_2d_spiking_feature_map(spikes=spikes, nrows=6, ncols=8,
                                      title="spiking feature map")
    assert fig.dpi == 200
    assert fig.get_suptitle() == "spiking feature map"
    assert len(fig.axes) == 48
    for c, ax in enumerate(fig.axes):  # row by row
        assert ax.get_subplotspec().rowspan.start == c // 8
        assert ax.get_subplotspec().colspan.start == c % 8
        (image,) = ax.images
        assert np.array_equal(image.get_array(), spikes[c])
        assert image.get_clim() == (0, 1)
        assert len(ax.get_xticks()) == len(ax.get_yticks()) == 0


def test_plot_2d_spiking_feature_map_leaves_spare_cells_empty():
    spikes = torch.zeros(7, 3, 5)
    fig = plot_2d_spiking_feature_map(spikes, *feature_map_grid(7), title=None)
    assert len(fig.axes) == 8
    assert [len(ax.images) for ax in fig.axes] == [1] * 7 + [0]
    assert not fig.axes[-1].axison
    assert fig.get_suptitle() == ""


def test_feature_map_grid():
    assert feature_map_grid(48) == (6, 8)
    assert feature_map_grid(6) == (2, 3)
    assert feature_map_grid(7) == (2, 4)
    assert feature_map_grid(1) == (1, 1)
    for maps in range(1, 200):
        nrows, ncols = feature_map_grid(maps)
        assert nrows * ncols >= maps > (nrows - 1) * ncols
    with pytest.raises(ValueError):
        feature_map_grid(0)


@pytest.mark.parametrize("draw", [
    lambda: plot_2d_heatmap(voltages(), "t", "x", "y"),
    lambda: plot_2d_bar_in_3d(voltages(3, 8), "t", "x", "y", "z"),
    lambda: plot_2d_spiking_feature_map(
        np.random.default_rng(7).random((6, 4, 4)) > 0.5, 2, 3, "maps"),
], ids=["heatmap", "bar_in_3d", "feature_map"])
def test_2d_figures_png_is_not_blank(draw):
    assert png_colours(draw()) > 10


@pytest.mark.parametrize("call, shape", [
    (lambda a: plot_2d_heatmap(a, "t", "x", "y"), (5,)),
    (lambda a: plot_2d_heatmap(a, "t", "x", "y"), (2, 3, 4)),
    (lambda a: plot_2d_heatmap(a, "t", "x", "y"), (0, 3)),
    (lambda a: plot_2d_bar_in_3d(a, "t", "x", "y", "z"), (5,)),
    (lambda a: plot_2d_bar_in_3d(a, "t", "x", "y", "z"), (3, 0)),
    (lambda a: plot_2d_spiking_feature_map(a, 2, 2, "t"), (4, 5)),
    (lambda a: plot_2d_spiking_feature_map(a, 2, 2, "t"), (4, 2, 3, 3)),
    (lambda a: plot_2d_spiking_feature_map(a, 2, 2, "t"), (0, 3, 3)),
])
def test_2d_figures_reject_bad_shapes(call, shape):
    with pytest.raises(ValueError, match=r"wants"):
        call(np.zeros(shape))


def test_plot_2d_spiking_feature_map_wants_cells_for_every_map():
    with pytest.raises(ValueError, match="5 maps do not fit in 2 x 2"):
        plot_2d_spiking_feature_map(np.zeros((5, 3, 3)), 2, 2, "t")
    with pytest.raises(ValueError, match="do not fit"):
        plot_2d_spiking_feature_map(np.zeros((1, 3, 3)), 0, 2, "t")


def test_plot_run_draws_a_state_of_many_neurons_as_a_heat_map():
    """Above MAX_TRACED_NEURONS a recorded state is plot_2d_heatmap's image (neurons
    down, at their own indices; time in ms across), with its colour bar."""
    values = torch.randn(400, 1, 1000).cumsum(0)
    fig = plot_run({"big.spikes": poisson(400, 1000, 0.01, seed=4), "big.v": values},
                   dt_ms=0.5)
    panel = fig.axes[2]
    assert panel.get_title(loc="left") == "big.v"
    (image,) = panel.images
    assert image.get_extent() == [0.0, 200.0, 999.5, -0.5]
    shown = shown_neurons(1000, 500)
    assert np.array_equal(image.get_array(), values[:, 0, shown].numpy().T)
    assert "500 of 1,000" in panel.get_ylabel()
    assert [a.get_ylabel() for a in panel.child_axes] == ["v"]  # the colour bar
