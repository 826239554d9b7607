"""A network summary as a text table."""

from __future__ import annotations

from srpipe.default_plugins.inspect.layers import Summary


def _shape(shape) -> str:
    return "x".join(str(v) for v in shape) if shape else "-"


def _macs(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def format_summary(summary: Summary) -> str:
    """One row per layer (type, kernel, stride, padding, dilation, output shape, weights,
    biases, receptive field, MACs), then the totals."""
    header = ("layer", "type", "kernel", "stride", "pad", "dil", "output", "weights", "biases", "RF", "MACs")
    rows = [header]
    for layer in summary.layers:
        rf = _shape(layer.receptive_field)
        rows.append((layer.name, layer.type, _shape(layer.kernel), _shape(layer.stride), _shape(layer.padding),
                     _shape(layer.dilation),
                     _shape(layer.output_shape) + ("" if layer.shape_checked is not False else " !"),
                     f"{layer.weights:,}", f"{layer.biases:,}", rf, _macs(layer.macs)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"{summary.model or summary.network} ({summary.network}), input {_shape(summary.input_shape)} (C x H x W)"]
    lines += ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
              for row in rows]
    mismatched = [layer.name for layer in summary.layers if layer.shape_checked is False]
    lines.append(f"total: {summary.parameters:,} parameters ({summary.weights:,} weights, {summary.biases:,} biases), "
                 f"{summary.macs:,} multiply-accumulates ({_macs(summary.macs)}) per input")
    lines.append("output shapes: O = (I - K_eff + 2P) / S + 1 "
                 + (f"DIFFERS from the forward pass at {', '.join(mismatched)} (marked !)" if mismatched
                    else "matches the forward pass at every layer with a formula"))
    lines.append("RF: receptive field in input pixels, r_k = r_(k-1) + (K_eff - 1) * prod(strides before k)")
    return "\n".join(lines)
