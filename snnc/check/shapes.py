"""Shape inference through a connection's op pipeline, by each op's shape rule
(snnc.registry.ops).

Ops that set a size (dense, sparse, conv1d, conv2d, axat) take it from `out`
when given; otherwise the last of them in the pipeline takes it from the
target population's shape, seen back through the ops that follow it.

Every shape a pipeline makes holds at most MAX_ELEMENTS per sample.
"""
from __future__ import annotations

import math

from snnc.errors import Pos, SnnError
from snnc.ir.nodes import Shape
from snnc.ir.values import Value
from snnc.limits import MAX_ELEMENTS
from snnc.registry.ops import OPS, ShapeError


def fmt(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def infer_pipeline(ops: list[tuple[str, dict[str, Value], Pos]], src: str, src_shape: Shape,
                   dst: str, dst_shape: Shape, conn: str, conn_pos: Pos) -> list[Shape]:
    """The shape after each op (in_shape first); an SnnError on any mismatch."""
    if not ops:
        if src_shape != dst_shape:
            raise SnnError(f"connection '{conn}' has no ops, so '{src}' {fmt(src_shape)} and "
                           f"'{dst}' {fmt(dst_shape)} must have the same shape", conn_pos,
                           "add ops, e.g. `: flatten | dense`")
        return [src_shape]
    last_sizing = max((i for i, (kind, params, _) in enumerate(ops)
                       if OPS[kind].sizing and params.get("out") is None), default=None)
    out_size = 1
    if last_sizing is not None:
        out_size = _size_from_target(ops, last_sizing, src_shape, dst_shape)
    shapes = _run(ops, src_shape, src, last_sizing, out_size, conn)
    if shapes[-1] != dst_shape:
        kind, _, pos = ops[-1]
        raise SnnError(f"shape mismatch in '{conn}': the ops produce {fmt(shapes[-1])} but "
                       f"'{dst}' has shape {fmt(dst_shape)}", pos,
                       _mismatch_hint(ops, shapes, dst_shape))
    return shapes


def _run(ops, src_shape: Shape, src: str, last_sizing: int | None, out_size: int,
         conn: str) -> list[Shape]:
    shapes = [src_shape]
    for i, (kind, params, pos) in enumerate(ops):
        size = params.get("out")
        if size is None and OPS[kind].sizing:
            if i != last_sizing:
                raise SnnError(f"cannot infer the output size of `{kind}` in '{conn}': only "
                               "the last sizing op takes its size from the target", pos,
                               f"give it explicitly: {kind}(out = N)")
            size = out_size
        before = shapes[-1]
        try:
            shapes.append(OPS[kind].shape(before, params, size))
        except ShapeError as exc:
            came_from = f"'{src}'" if i == 0 else f"`{ops[i - 1][0]}`"
            raise SnnError(f"`{kind}` {exc}, but gets {fmt(before)} from {came_from} "
                           f"in '{conn}'", pos) from None
        _check_elements(shapes[-1], kind, conn, pos)
    return shapes


def _check_elements(shape: Shape, kind: str, conn: str, pos: Pos) -> None:
    """Every intermediate tensor of a pipeline is bounded as a population's is."""
    if math.prod(shape) > MAX_ELEMENTS:
        raise SnnError(f"`{kind}` in '{conn}' makes {fmt(shape)}: {math.prod(shape)} "
                       "elements per sample", pos, f"at most {MAX_ELEMENTS}")


def _size_from_target(ops, at: int, src_shape: Shape, dst_shape: Shape) -> int:
    """The size the op at `at` must produce so the pipeline ends in `dst_shape`."""
    kind = ops[at][0]
    after = [op[0] for op in ops[at + 1:]]
    if "flatten" in after:
        # Flattening multiplies the size by what one unit of it grows into.
        try:
            unit = _run(ops, src_shape, "", at, 1, "")[-1]
        except SnnError:
            return max(1, dst_shape[0])
        return max(1, math.prod(dst_shape) // max(1, math.prod(unit)))
    axis = OPS[kind].size_axis
    size = dst_shape[axis]
    for later, params, _ in ops[at + 1:]:
        if later == "channel_maxpool" and axis == 0:
            size *= params["k"]
    return size


def _mismatch_hint(ops, shapes: list[Shape], dst_shape: Shape) -> str | None:
    kinds = [kind for kind, _, _ in ops]
    if "dense" in kinds and "flatten" not in kinds and len(shapes[0]) > 1 and len(dst_shape) == 1:
        return "add `flatten` before `dense`"
    if math.prod(shapes[-1]) == math.prod(dst_shape):
        return f"the sizes agree ({math.prod(dst_shape)}); add `flatten` or change the shape"
    return None
