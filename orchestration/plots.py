"""Small plots for asset metadata: PNG images embedded in markdown, which the Dagster UI shows
inline where a distribution is easier to look at than to read."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import dagster as dg


def _figure(title: str, xlabel: str, ylabel: str):
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return plt, fig, ax


def _png(plt, fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def histogram_png(
    values: Sequence[float] | Mapping[str, Sequence[float]],
    title: str,
    xlabel: str,
    bins: int = 20,
    value_range: tuple[float, float] | None = None,
    ylabel: str = "posts",
    density: bool = False,
) -> bytes:
    """A histogram; several named series are drawn as overlaid steps. With `density` each
    series is normalised to unit area, so series of different sizes overlay fairly."""
    plt, fig, ax = _figure(title, xlabel, ylabel)
    series = values if isinstance(values, Mapping) else {"": values}
    for name, data in series.items():
        ax.hist(
            list(data),
            bins=bins,
            range=value_range,
            density=density,
            histtype="step",
            linewidth=1.5,
            label=name or None,
        )
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _png(plt, fig)


def bar_png(counts: Mapping[str, float], title: str, xlabel: str, ylabel: str = "posts") -> bytes:
    """One bar per named count, in the mapping's order."""
    plt, fig, ax = _figure(title, xlabel, ylabel)
    ax.bar(list(counts), list(counts.values()), color="tab:blue")
    ax.tick_params(axis="x", labelsize=8)
    return _png(plt, fig)


def markdown_image(png: bytes, alt: str) -> dg.MetadataValue:
    encoded = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def column_schema(schema: Mapping[str, object]) -> dict[str, dg.TableSchema]:
    """Asset metadata naming a table's columns and types, which the UI shows as its schema."""
    columns = [dg.TableColumn(name, str(dtype)) for name, dtype in schema.items()]
    return {"dagster/column_schema": dg.TableSchema(columns=columns)}


def markdown_table(rows: Sequence[Mapping[str, object]]) -> dg.MetadataValue:
    if not rows:
        return dg.MetadataValue.md("(none)")
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def _cell(value: object) -> str:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:120]


def calibration_png(curves: Mapping[str, Sequence[Mapping[str, float]]], title: str) -> bytes:
    """Mean prediction per label (both on the 1-5 scale), one line per model, with the
    diagonal a perfectly calibrated model would follow."""
    plt, fig, ax = _figure(title, "label", "mean prediction (1-5)")
    ax.plot([1, 5], [1, 5], color="grey", linewidth=0.8, linestyle="--", label="ideal")
    for name, rows in curves.items():
        ax.plot(
            [r["label"] for r in rows],
            [r["mean_prediction"] for r in rows],
            marker="o",
            linewidth=1.5,
            label=name,
        )
    ax.set_xlim(0.8, 5.2)
    ax.set_ylim(0.8, 5.2)
    ax.legend(fontsize=8)
    return _png(plt, fig)
