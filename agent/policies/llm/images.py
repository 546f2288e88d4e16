"""Dose-plane images for multimodal models: the report's dose-plane figure, re-keyed to the
template's structure ids, as a PNG without metadata.

What may reach the model through an image, and how it is kept clean:

- structures: only those of the template, drawn and named by their canonical ids; a plan
  structure the template does not know (its id could carry a name) is left out;
- text drawn in the pixels: the label ``current``, plane names, positions, doses, the
  canonical ids (no plan, course or patient id is ever passed to the renderer);
- metadata: none (no PNG text chunks: see
  :func:`agent.report.plots.png_without_metadata`); the caption is text of the request,
  redacted and scanned like the rest of it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from agent.policies.base import PolicyContext
from agent.policies.llm.sanitize import Redactor, quote_data
from agent.policies.llm.wire import ImagePart
from agent.report.artifacts import PlanSnapshot
from agent.report.dose_planes import ISODOSE_LEVELS_PCT, WASH_RANGE_RX, slices_figure
from agent.report.plots import png_without_metadata, structure_colours
from esapi_bridge.dto import DoseSlice

#: Resolution of the image (the report figure is about 16 x 5.3 in: 1440 x 480 px at 90 dpi,
#: under the 1568 px long edge above which Claude scales images down).
IMAGE_DPI = 90
LABEL = "current"


def canonical_planes(planes: Sequence[DoseSlice], context: PolicyContext) -> list[DoseSlice]:
    """``planes`` with their masks keyed by the template's ids; unmapped structures dropped."""
    inverse = {plan_id: canonical for canonical, plan_id in context.structure_map.items()}
    out: list[DoseSlice] = []
    for plane in planes:
        masks = {inverse[sid]: m for sid, m in plane.masks.items() if sid in inverse}
        out.append(plane.model_copy(update={"masks": masks}))
    return out


def _caption(planes: Sequence[DoseSlice], context: PolicyContext) -> str:
    where = []
    for p in planes:
        cut = ({"x", "y", "z"} - {p.row_axis, p.col_axis}).pop()
        where.append(f"{p.plane.value} at {cut} = {p.position_mm:.1f} mm")
    structures = sorted({sid for p in planes for sid in p.masks})
    low, high = WASH_RANGE_RX
    levels = ", ".join(f"{pct:g}" for pct, _ in ISODOSE_LEVELS_PCT)
    return (
        f"Dose planes of the current plan ({'; '.join(where)}): a colour wash from "
        f"{100 * low:g} % to {100 * high:g} % of the prescription "
        f"({context.prescription_gy:g} Gy), isodose lines at {levels} % of it, and the "
        f"contours of {', '.join(quote_data(s) for s in structures) or 'no structure'}."
    )


def dose_plane_images(
    planes: Sequence[DoseSlice], context: PolicyContext, redactor: Redactor
) -> list[ImagePart]:
    """One PNG of the current plan's dose planes with its caption (``[]`` without planes).

    Parameters
    ----------
    planes
        The TPS's dose planes (plan structure ids in the masks).
    context
        The policy context (structure map, prescription).
    redactor
        Redacts the session's identifiers from the caption.
    """
    canonical = canonical_planes(planes, context)
    if not canonical:
        return []
    snapshot = PlanSnapshot(label=LABEL, dvhs={}, slices={p.plane: p for p in canonical})
    colours = structure_colours(list(context.structure_map))
    fig = slices_figure([snapshot], colours, context.prescription_gy)
    if fig is None:  # pragma: no cover - a snapshot with planes always draws
        return []
    data = base64.b64encode(png_without_metadata(fig, IMAGE_DPI)).decode("ascii")
    return [ImagePart(data_b64=data, caption=redactor.redact(_caption(canonical, context)))]


__all__ = ["IMAGE_DPI", "canonical_planes", "dose_plane_images"]
