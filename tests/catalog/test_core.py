"""The catalog's pure core: the shipped data, its validation, and capacity conversion."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from computelease.catalog.core import (
    CONFIDENCES,
    PRECISIONS,
    Accelerator,
    Catalog,
    CatalogInvalid,
    ConversionError,
    Figure,
    ServerSku,
    UnknownAccelerator,
    UnknownFigure,
    accelerator_from_dict,
    build_catalog,
    convert,
    load_catalog,
    sku_from_dict,
    validate_entries,
)
from computelease.errors import AppError

# DOMAIN.md's accelerator table, column for column (None where it prints "–" or "?"), so that a
# reviewer can hold the two side by side. Disputed or vague cells are checked separately below.
PRECISION_COLUMNS = ("bf16", "fp16", "fp8", "tf32", "fp32")
COLUMNS = (*PRECISION_COLUMNS, "memory_gb", "memory_bandwidth_gbs", "scale_up_gbs", "tdp_w")
DOMAIN_TABLE: dict[str, tuple[str | None, ...]] = {
    "nvidia-a100-sxm": ("312", "312", None, "156", "19.5", "80", "2039", "600", "400"),
    "nvidia-a800-sxm": ("312", "312", None, "156", "19.5", "80", "2039", "400", "400"),
    "nvidia-h100-sxm": ("989.4", "989.4", "1978.9", "494.7", "66.9", "80", "3350", "900", "700"),
    "nvidia-h100-pcie": ("756", "756", "1513", "378", "51", "80", "2000", "600", "350"),
    "nvidia-h800-sxm": ("989", "989", "1979", "495", "67", "80", "3350", "400", "700"),
    "nvidia-h20": ("148", "148", "296", "74", "44", "96", "4000", "900", "400"),
    "nvidia-h200-sxm": ("989", "989", "1979", "494.7", "66.9", "141", "4800", "900", "700"),
    "nvidia-l40s": ("362", "362", "733", "183", "91.6", "48", "864", None, "350"),
    "nvidia-l20": ("119.5", "119.5", "239", "59.8", "59.8", "48", "864", None, "275"),
    "nvidia-b200": ("2250", "2250", "4500", "1100", "75", "192", "8000", "1800", "1000"),
    "nvidia-gb200": ("2500", "2500", "5000", "1250", "90", "192", "8000", "1800", None),
    "huawei-ascend-910b": (None, None, None, None, None, "64", None, None, None),
    "huawei-ascend-910c": (None, "800", None, None, None, "128", None, None, None),
    "biren-br100": (None, None, None, None, "256", "64", "1640", None, "550"),
    "moorethreads-mtt-s4000": ("100", "100", None, "50", "25", "48", "768", "240", None),
}
DOMAIN_CONFIDENCE = {
    "nvidia-a100-sxm": "datasheet",
    "nvidia-h100-sxm": "datasheet",
    "nvidia-h100-pcie": "datasheet",
    "nvidia-h200-sxm": "datasheet",
    "nvidia-l40s": "datasheet",
    "nvidia-h20": "third-party",
    "nvidia-l20": "third-party",
    "moorethreads-mtt-s4000": "third-party",
    "huawei-ascend-910b": "weak",
    "huawei-ascend-910c": "weak",
    "biren-br100": "weak",
}
UNSOURCED_PARTS = ("cambricon-mlu370", "cambricon-mlu590", "hygon-k100", "kunlunxin-p800", "metax-c500")
DEMO_SKUS = {
    "nvidia-h100-sxm": "nvidia-hgx-h100-8gpu",
    "nvidia-h800-sxm": "nvidia-hgx-h800-8gpu",
    "nvidia-h20": "nvidia-hgx-h20-8gpu",
    "huawei-ascend-910b": "huawei-ascend-910b-8card",
}

# Every (model, precision, sparse) the shipped catalog can convert at.
KNOWN_FIGURES = [
    (accelerator.id, precision, kind == "sparse")
    for accelerator in load_catalog().accelerators
    for kind in ("dense", "sparse")
    for precision, figure in getattr(accelerator, kind).items()
    if figure.known
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _raw() -> tuple[dict[str, Any], dict[str, Any]]:
    data = resources.files("computelease.catalog") / "data"
    return tuple(  # type: ignore[return-value]
        tomllib.loads((data / name).read_text(encoding="utf-8"), parse_float=Decimal)
        for name in ("accelerators.toml", "servers.toml")
    )


def _figure(value: str | None = "100", **kw: Any) -> Figure:
    kw.setdefault("source", "test")
    kw.setdefault("confidence", "datasheet")
    return Figure(value=Decimal(value) if value is not None else None, **kw)


def _accelerator(accelerator_id: str = "test-gpu", **kw: Any) -> Accelerator:
    base: dict[str, Any] = dict(
        vendor="Test", name="Test GPU", origin="imported", source="test", confidence="datasheet"
    )
    return Accelerator(id=accelerator_id, **{**base, **kw})


def _sku(sku_id: str = "test-server", accelerator_id: str = "test-gpu", **kw: Any) -> ServerSku:
    base: dict[str, Any] = dict(name="Test server", gpus_per_node=8, source="test", confidence="datasheet")
    return ServerSku(id=sku_id, accelerator_id=accelerator_id, **{**base, **kw})


class TestShippedCatalog:
    def test_shipped_files_validate(self, catalog: Catalog) -> None:
        assert validate_entries(catalog.accelerators, catalog.skus) == []
        assert len(catalog.accelerators) >= 20
        assert load_catalog() is catalog

    def test_every_figure_has_a_source_and_an_allowed_confidence(self, catalog: Catalog) -> None:
        for entry in (*catalog.accelerators, *catalog.skus):
            assert entry.source.strip() and entry.confidence in CONFIDENCES, entry.id
            for path, figure in entry.figures():
                assert figure.source.strip(), (entry.id, path)
                assert figure.confidence in CONFIDENCES, (entry.id, path)
        for sku in catalog.skus:
            for price in sku.prices:
                assert price.source.strip() and price.confidence in CONFIDENCES, sku.id

    @pytest.mark.parametrize("accelerator_id", sorted(DOMAIN_TABLE))
    def test_every_domain_row_is_present_with_its_figures(
        self, catalog: Catalog, accelerator_id: str
    ) -> None:
        accelerator = catalog.accelerator(accelerator_id)
        for column, expected in zip(COLUMNS, DOMAIN_TABLE[accelerator_id], strict=True):
            figure = accelerator.dense.get(column) if column in PRECISIONS else getattr(accelerator, column)
            actual = figure.value if figure is not None else None
            assert actual == (Decimal(expected) if expected else None), (accelerator_id, column)
        if accelerator_id in DOMAIN_CONFIDENCE:
            assert accelerator.confidence == DOMAIN_CONFIDENCE[accelerator_id]

    def test_figures_are_exact_decimals_not_binary_floats(self, catalog: Catalog) -> None:
        figure = catalog.accelerator("nvidia-h100-sxm").dense.bf16
        assert figure is not None and isinstance(figure.value, Decimal)
        assert figure.value == Decimal("989.4")

    def test_ascend_910b_fp16_is_a_flagged_range_never_a_value(self, catalog: Catalog) -> None:
        ascend = catalog.accelerator("huawei-ascend-910b")
        fp16 = ascend.dense.fp16
        assert fp16 is not None and fp16.value is None
        assert (fp16.low, fp16.high) == (Decimal(256), Decimal(376))
        assert fp16.confidence == "weak" and fp16.note
        tdp = ascend.tdp_w
        assert tdp is not None and (tdp.low, tdp.high) == (Decimal(310), Decimal(400))
        assert ascend.origin == "domestic"

    def test_biren_claims_of_unstated_basis_are_kept_out_of_conversion(self, catalog: Catalog) -> None:
        biren = catalog.accelerator("biren-br100")
        for precision, claim in (("bf16", "1,024"), ("tf32", "512")):
            figure = biren.dense.get(precision)
            assert figure is not None and not figure.known
            assert figure.note is not None and claim in figure.note

    @pytest.mark.parametrize("accelerator_id", UNSOURCED_PARTS)
    def test_unsourced_domestic_parts_exist_with_no_figures(
        self, catalog: Catalog, accelerator_id: str
    ) -> None:
        accelerator = catalog.accelerator(accelerator_id)
        assert accelerator.origin == "domestic"
        assert list(accelerator.figures()) == []
        assert accelerator.confidence == "weak"

    def test_sparse_is_twice_dense_where_derived_from_2_4_sparsity(self, catalog: Catalog) -> None:
        derived = 0
        for accelerator in catalog.accelerators:
            for precision, sparse in accelerator.sparse.items():
                if sparse.source.startswith("2× dense"):
                    dense = accelerator.dense.get(precision)
                    assert dense is not None and dense.value is not None
                    assert sparse.value == 2 * dense.value, (accelerator.id, precision)
                    derived += 1
        assert derived > 30

    def test_only_tensor_precisions_have_sparse_figures(self, catalog: Catalog) -> None:
        for accelerator in catalog.accelerators:
            assert accelerator.sparse.fp32 is None and accelerator.sparse.fp64 is None, accelerator.id

    @pytest.mark.parametrize(("accelerator_id", "sku_id"), sorted(DEMO_SKUS.items()))
    def test_demo_fleet_models_have_a_default_8_gpu_sku(
        self, catalog: Catalog, accelerator_id: str, sku_id: str
    ) -> None:
        sku = catalog.default_sku(accelerator_id)
        assert sku is not None and sku.id == sku_id
        assert sku.gpus_per_node == 8 and not sku.custom

    def test_h100_sku_carries_domain_power_and_prices(self, catalog: Catalog) -> None:
        sku = catalog.sku("nvidia-hgx-h100-8gpu")
        assert sku.typical_kw is not None and sku.typical_kw.value == Decimal("6.2")
        assert sku.peak_kw is not None and sku.peak_kw.value == Decimal("10.2")
        assert sku.rack_units is None
        prices = {p.currency: p for p in sku.prices}
        assert prices["USD"].amount == 317000 and prices["USD"].as_of == "2024"
        assert prices["CNY"].amount == 2300000 and prices["CNY"].as_of is None
        assert prices["CNY"].confidence == "weak"

    def test_unknown_sku_figures_stay_unknown(self, catalog: Catalog) -> None:
        sku = catalog.sku("nvidia-hgx-h20-8gpu")
        assert (sku.typical_kw, sku.peak_kw, sku.rack_units, sku.prices) == (None, None, None, ())


class TestConvert:
    def test_article_contract_1545_pflops_bf16_on_h100(self) -> None:
        result = convert("nvidia-h100-sxm", pflops=1545, precision="bf16")
        # 1,545,000 / 989.4 = 1561.51…: a partial GPU cannot be leased, so it rounds up.
        assert result.gpus == 1562
        assert result.nodes == 196
        assert result.sku == "nvidia-hgx-h100-8gpu" and result.gpus_per_node == 8
        assert result.pflops == Decimal("1545.4428")
        assert result.requested_pflops == 1545
        assert result.to_dict()["gpus"] == 1562 and result.to_dict()["nodes"] == 196

    @pytest.mark.parametrize("pflops", [1545, "1545", Decimal("1545.000"), 1545.0])
    def test_input_types_agree(self, pflops: Any) -> None:
        assert convert("nvidia-h100-sxm", pflops=pflops).gpus == 1562

    def test_exact_multiple_does_not_round_up_an_extra_gpu(self) -> None:
        # 19 GPUs deliver 18.7986 PFLOPS; in binary floats 18.7986 × 1000 / 989.4 = 19.000000000000004,
        # which ceil turns into a 20th GPU the contract does not need.
        assert convert("nvidia-h100-sxm", pflops="18.7986").gpus == 19
        assert convert("nvidia-h100-sxm", pflops=18.7986).gpus == 19
        assert convert("nvidia-h100-sxm", pflops="18.7987").gpus == 20
        assert convert("nvidia-h100-sxm", pflops="1545.4428").gpus == 1562

    def test_gpus_convert_back_to_pflops_and_nodes(self) -> None:
        result = convert("nvidia-h100-sxm", gpus=1562)
        assert (result.pflops, result.nodes, result.requested_pflops) == (Decimal("1545.4428"), 196, None)

    def test_nodes_convert_to_whole_servers_of_gpus(self) -> None:
        result = convert("nvidia-h20", nodes=3)
        assert (result.gpus, result.nodes, result.pflops) == (24, 3, Decimal("3.552"))

    def test_sparse_uses_the_sparse_figure(self) -> None:
        result = convert("nvidia-h100-sxm", pflops=1545, sparse=True)
        assert result.tflops_per_gpu == Decimal("1978.8")
        assert result.gpus == 781  # 1,545,000 / 1,978.8 = 780.77…

    @given(figure=st.sampled_from(KNOWN_FIGURES), gpus=st.integers(min_value=1, max_value=200_000))
    def test_round_trip_gpus_to_pflops_and_back(self, figure: tuple[str, str, bool], gpus: int) -> None:
        model, precision, sparse = figure
        there = convert(model, gpus=gpus, precision=precision, sparse=sparse)
        assert there.pflops is not None
        back = convert(model, pflops=there.pflops, precision=precision, sparse=sparse)
        assert back.gpus == gpus and back.nodes == there.nodes

    def test_unknown_figure_names_the_figure_and_the_model(self) -> None:
        with pytest.raises(UnknownFigure) as caught:
            convert("huawei-ascend-910b", pflops=100, precision="bf16")
        assert str(caught.value) == (
            "bf16 dense TFLOPS of huawei-ascend-910b is unknown in the catalog; "
            "convert by GPUs or add a measured figure"
        )
        assert isinstance(caught.value, AppError) and caught.value.status == 422
        assert caught.value.problem()["model"] == "huawei-ascend-910b"

    def test_disputed_figure_is_refused_and_its_range_shown(self) -> None:
        with pytest.raises(UnknownFigure, match=r"fp16 dense TFLOPS of huawei-ascend-910b .*256–376"):
            convert("huawei-ascend-910b", pflops=100, precision="fp16")

    def test_missing_sparse_figure_and_int8_unit_are_named(self) -> None:
        with pytest.raises(UnknownFigure, match="int8 sparse TOPS of nvidia-h20 is unknown"):
            convert("nvidia-h20", pflops=1, precision="int8", sparse=True)

    def test_by_gpus_an_unknown_figure_leaves_pflops_unknown(self) -> None:
        result = convert("huawei-ascend-910b", gpus=1000)
        assert (result.gpus, result.nodes, result.pflops) == (1000, 125, None)
        assert result.to_dict()["pflops"] is None

    def test_weak_figure_converts_but_reports_its_confidence(self) -> None:
        result = convert("huawei-ascend-910c", gpus=10, precision="fp16")
        assert result.pflops == 8 and result.figure is not None and result.figure.confidence == "weak"

    def test_model_without_sku_has_no_nodes(self) -> None:
        assert convert("nvidia-l40s", gpus=10).nodes is None
        with pytest.raises(ConversionError, match="no server SKU is known for nvidia-l40s"):
            convert("nvidia-l40s", nodes=2)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"pflops": 10, "gpus": 8}, "exactly one of pflops, gpus or nodes"),
            ({}, "exactly one of pflops, gpus or nodes"),
            ({"pflops": 10, "precision": "fp4"}, "unknown precision 'fp4'"),
            ({"pflops": -1}, "pflops must be a positive number"),
            ({"pflops": "nan"}, "pflops must be a positive number"),
            ({"gpus": 2.5}, "gpus must be a positive whole number"),
            ({"gpus": True}, "gpus must be a positive whole number"),
            ({"gpus": 8, "sku": "nvidia-hgx-h20-8gpu"}, "holds nvidia-h20, not nvidia-h100-sxm"),
        ],
    )
    def test_bad_requests_say_what_to_fix(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(ConversionError, match=message) as caught:
            convert("nvidia-h100-sxm", **kwargs)
        assert caught.value.status == 422

    def test_unknown_model_is_not_found(self) -> None:
        with pytest.raises(UnknownAccelerator, match="no accelerator 'nvidia-h1000'") as caught:
            convert("nvidia-h1000", gpus=8)
        assert caught.value.status == 404


class TestValidation:
    def _broken(self) -> tuple[dict[str, Any], dict[str, Any]]:
        accelerators, servers = _raw()
        h100 = accelerators["nvidia-h100-sxm"]
        del h100["dense"]["bf16"]["source"]
        h100["dense"]["fp16"]["confidence"] = "sure"
        h100["dense"]["bf61"] = dict(h100["dense"]["fp8"])
        h100["tdp_w"] = {"low": 700, "high": 600, "source": "x", "confidence": "weak"}
        servers["nvidia-hgx-h20-8gpu"]["accelerator_id"] = "nvidia-h21"
        return accelerators, servers

    def test_structural_problems_are_all_reported_at_once(self) -> None:
        with pytest.raises(CatalogInvalid) as caught:
            build_catalog(*self._broken())
        problems = caught.value.problems
        assert "accelerator nvidia-h100-sxm: dense.bf16: source is missing" in problems
        assert "accelerator nvidia-h100-sxm: dense: unknown key 'bf61'" in problems
        assert caught.value.status == 422

    def test_semantic_problems_are_all_reported_at_once(self) -> None:
        accelerators, servers = self._broken()
        accelerators["nvidia-h100-sxm"]["dense"]["bf16"]["source"] = "back"
        del accelerators["nvidia-h100-sxm"]["dense"]["bf61"]
        with pytest.raises(CatalogInvalid) as caught:
            build_catalog(accelerators, servers)
        problems = caught.value.problems
        assert any("dense.fp16: confidence 'sure' is not one of" in p for p in problems)
        assert "accelerator nvidia-h100-sxm: tdp_w: low 700 must be below high 600" in problems
        assert any("tdp_w: a range needs a note" in p for p in problems)
        assert "sku nvidia-hgx-h20-8gpu: accelerator_id 'nvidia-h21' is not in the catalog" in problems
        assert len(problems) == 4

    def test_duplicate_ids_are_refused(self) -> None:
        with pytest.raises(CatalogInvalid, match="accelerator test-gpu: duplicate id"):
            Catalog((_accelerator(), _accelerator()))

    def test_two_defaults_for_one_accelerator_are_refused(self) -> None:
        skus = (_sku("a-server", default=True), _sku("b-server", default=True))
        with pytest.raises(CatalogInvalid, match="a second default SKU for test-gpu"):
            Catalog((_accelerator(),), skus)

    def test_sparse_below_dense_is_a_typo(self) -> None:
        bad = _accelerator(
            dense=replace(_accelerator().dense, bf16=_figure("100")),
            sparse=replace(_accelerator().sparse, bf16=_figure("50")),
        )
        assert validate_entries([bad], []) == ["accelerator test-gpu: sparse.bf16: 50 is below dense 100"]

    def test_figure_without_value_must_say_why(self) -> None:
        bad = _accelerator(memory_gb=_figure(None))
        assert validate_entries([bad], []) == [
            "accelerator test-gpu: memory_gb: a figure without a value needs a note (or leave the figure out)"
        ]

    def test_shipped_entries_cannot_claim_to_be_custom(self) -> None:
        accelerators, servers = _raw()
        accelerators["nvidia-h20"]["custom"] = True
        with pytest.raises(CatalogInvalid, match="accelerator nvidia-h20: shipped entries cannot be custom"):
            build_catalog(accelerators, servers)


class TestCustomEntries:
    def test_custom_default_sku_wins_over_the_shipped_one(self, catalog: Catalog) -> None:
        own = _sku("my-h100-4gpu", "nvidia-h100-sxm", gpus_per_node=4, default=True, custom=True)
        merged = catalog.with_custom(skus=[own])
        assert merged.default_sku("nvidia-h100-sxm") == own
        assert convert("nvidia-h100-sxm", pflops=1545, catalog=merged).nodes == 391
        assert catalog.default_sku("nvidia-h100-sxm").id == "nvidia-hgx-h100-8gpu"  # type: ignore[union-attr]

    def test_custom_accelerator_with_a_measured_figure_converts(self, catalog: Catalog) -> None:
        measured = _accelerator(
            "my-910b-measured",
            origin="domestic",
            custom=True,
            dense=replace(_accelerator().dense, bf16=_figure("280", confidence="weak", note="our GEMM run")),
        )
        merged = catalog.with_custom(accelerators=[measured])
        assert convert("my-910b-measured", pflops=28, catalog=merged).gpus == 100

    def test_custom_ids_may_not_shadow_shipped_ones(self, catalog: Catalog) -> None:
        clash = _accelerator("nvidia-h100-sxm", custom=True)
        with pytest.raises(CatalogInvalid, match="accelerator nvidia-h100-sxm: duplicate id"):
            catalog.with_custom(accelerators=[clash])

    def test_custom_entries_must_be_marked_custom(self, catalog: Catalog) -> None:
        with pytest.raises(CatalogInvalid, match="custom entries must have custom=True"):
            catalog.with_custom(accelerators=[_accelerator()])

    def test_dict_round_trip_of_every_shipped_entry(self, catalog: Catalog) -> None:
        for accelerator in catalog.accelerators:
            as_json = json.loads(json.dumps(accelerator.to_dict()))
            assert accelerator_from_dict(as_json) == accelerator
        for sku in catalog.skus:
            assert sku_from_dict(json.loads(json.dumps(sku.to_dict()))) == sku

    def test_from_dict_reports_bad_operator_input(self) -> None:
        with pytest.raises(CatalogInvalid) as caught:
            accelerator_from_dict({"id": "My GPU", "vendor": "X", "name": "Y", "origin": "abroad"})
        problems = caught.value.problems
        assert "accelerator My GPU: source is missing" in problems
        assert "accelerator My GPU: confidence is missing" in problems
