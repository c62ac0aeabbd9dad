"""What every figure module shares: the model colours, saving a PNG, and text safe to draw."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"base": "#d1495b", "aligned": "#00798c"}  # hot model red, cold model blue (section 4.3)


def color(label: str) -> str:
    """The colour of a model label (grey for labels other than base and aligned)."""
    return COLORS.get(label, "#666666")


def save(fig, path: Path, dpi: int = 120) -> Path:
    """Lay out, write ``fig`` as PNG at ``path`` and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def printable(text: str) -> str:
    """Text safe for a plot label: control and unprintable characters escaped (random models emit them)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
