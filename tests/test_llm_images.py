"""Dose-plane images for the LLM planner (#10): template ids only, no PNG metadata, one read
of the planes per iteration, a clear refusal where the provider takes no images."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from fake_llm.images import png_chunks
from fakes import FakeTpsSession
from template_fixtures import frozen_prostate_template

from agent.evaluation import evaluate_session
from agent.policies.base import PolicyContext
from agent.policies.llm.errors import LlmConfigError
from agent.policies.llm.images import canonical_planes, dose_plane_images
from agent.policies.llm.policy import LlmPolicy
from agent.policies.llm.providers.base import (
    Locality,
    ProviderCapabilities,
    ProviderDescription,
    ProviderSettings,
)
from agent.policies.llm.sanitize import Redactor
from agent.policies.llm.settings import LlmSettings
from agent.policies.llm.wire import ImagePart
from agent.session.memory import Memory
from agent.session.plan_step import POLICY_DOSE_PLANES, dose_plane_reader
from agent.templates import match_structures
from esapi_bridge.dto import DoseSlice, OptimizeRequest, SlicePlane

RENAMED = {"PTV": "PTV_Smith", "Rectum": "Rectum_MRN123456"}
PIXEL_CHUNKS = {"IHDR", "pHYs", "IDAT", "IEND"}


def _context(with_stranger: bool = True) -> tuple[PolicyContext, FakeTpsSession]:
    from fakes import PROSTATE_STRUCTURES, FakeStructure

    structures = [
        FakeStructure(RENAMED.get(s.structure_id, s.structure_id), s.dicom_type, s.volume_cm3,
                      s.free_max_gy)
        for s in PROSTATE_STRUCTURES
    ]  # fmt: skip
    if with_stranger:  # a structure the template does not know, named after the patient
        structures.append(FakeStructure("Jones_spacer", "ORGAN", 12.0, 10.0))
    fake = FakeTpsSession(structures_spec=structures, dose_planes=True)
    fake.optimize(OptimizeRequest())
    fake.calculate_dose()
    template = frozen_prostate_template()
    specs = [
        s.model_copy(update={"aliases": [*s.aliases, RENAMED[s.id]]}) if s.id in RENAMED else s
        for s in template.structures
    ]
    template = template.model_copy(update={"structures": specs})
    smap = match_structures(template, [s.structure_id for s in structures])
    context = PolicyContext(
        iteration=1,
        max_iterations=5,
        template=template,
        structure_map=smap,
        prescription_gy=fake.prescription_gy,
        structures=fake.structures(),
        objectives=fake.get_objectives(),
        evaluation=evaluate_session(fake, template, smap),
        optimization=None,
        memory=Memory(),
    )
    return context, fake


def test_the_planes_are_keyed_by_template_ids_and_strangers_dropped() -> None:
    context, fake = _context()
    planes = [fake.dose_slice(p) for p in POLICY_DOSE_PLANES]
    assert "Jones_spacer" in planes[0].masks and "PTV_Smith" in planes[0].masks
    canonical = canonical_planes(planes, context)
    for plane in canonical:
        assert set(plane.masks) == set(context.structure_map)
        assert "PTV" in plane.masks and "PTV_Smith" not in plane.masks
    assert canonical[0].masks["PTV"] == planes[0].masks["PTV_Smith"]  # same pixels, new key


def test_the_image_is_a_png_without_metadata_and_its_caption_is_clean() -> None:
    context, fake = _context()
    planes = [fake.dose_slice(p) for p in POLICY_DOSE_PLANES]
    images = dose_plane_images(planes, context, Redactor(["Smith", "MRN123456", "Jones"]))
    assert len(images) == 1
    png = base64.b64decode(images[0].data_b64)
    kinds = [k for k, _ in png_chunks(png)]
    assert set(kinds) <= PIXEL_CHUNKS and kinds[0] == "IHDR" and kinds[-1] == "IEND"
    for needle in (b"Smith", b"Jones", b"MRN", b"matplotlib", b"Software"):
        assert needle not in png  # not in any chunk (pixels are compressed, metadata is not)
    caption = images[0].caption
    assert '"PTV"' in caption and '"Rectum"' in caption and "79.2 Gy" in caption
    assert "Smith" not in caption and "Jones" not in caption and "MRN" not in caption


def test_no_planes_no_image() -> None:
    context, _ = _context()
    assert dose_plane_images([], context, Redactor([])) == []


def test_an_image_part_must_be_a_whole_png() -> None:
    context, fake = _context(with_stranger=False)
    image = dose_plane_images([fake.dose_slice(SlicePlane.AXIAL)], context, Redactor([]))[0]
    assert len(image.data_b64) > 20_000  # kept whole (free text would be cut at 16384)
    with pytest.raises(ValueError, match="not base64"):
        ImagePart(data_b64="not base64 at all!")
    with pytest.raises(ValueError, match="not a PNG"):
        ImagePart(data_b64=base64.b64encode(b"GIF89a....").decode())


def test_the_planes_are_read_once_per_reader_and_absent_planes_are_empty() -> None:
    _, fake = _context(with_stranger=False)
    calls: list[SlicePlane] = []
    original = fake.dose_slice

    def counting(plane: SlicePlane, index: int | None = None) -> DoseSlice:
        calls.append(plane)
        return original(plane, index)

    fake.dose_slice = counting  # type: ignore[method-assign]
    read = dose_plane_reader(fake)
    first, second = read(), read()
    assert first is second and len(first) == 3 and calls == list(POLICY_DOSE_PLANES)
    assert dose_plane_reader(FakeTpsSession())() == ()  # CapabilityUnavailable -> no planes


class _TextOnlyProvider:
    """A provider whose model takes no images."""

    description = ProviderDescription(
        provider="openai-compatible",
        model="text-only-model",
        base_url="http://127.0.0.1:1/v1",
        locality=Locality.LOCAL,
        capabilities=ProviderCapabilities(supports_images=False),
    )

    def complete(self, request: Any) -> Any:  # pragma: no cover - never reached
        raise AssertionError("no call may be made")

    def estimate_input_tokens(self, request: Any) -> int:  # pragma: no cover
        return 0

    def close(self) -> None:
        pass


def test_images_with_a_text_only_model_are_refused_before_any_call(tmp_path: Path) -> None:
    settings = LlmSettings(provider=ProviderSettings(provider="openai-compatible"), images=True)
    policy = LlmPolicy(settings, provider_factory=_TextOnlyProvider)
    with pytest.raises(LlmConfigError, match="without --images"):
        policy.prepare()
