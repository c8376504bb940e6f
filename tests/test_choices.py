"""The settings model: what a URL may set, what it falls back to, and the configs it describes."""
import dataclasses

import pytest

from pages.ui.choices import (CONCERNS, PARAMETERS, BackboneChoice, CompareChoice, DataChoice, ExtractionChoice,
                              FinetuneChoice, KNNChoice, MapChoice, convert, from_params, problem, to_params)
from ptm_core.base.configs import DatasetConfig, ProjectionConfig, Source


def test_parameter_names_are_unique_across_concerns():
    assert len(PARAMETERS) == len(set(PARAMETERS))


@pytest.mark.parametrize("concern", CONCERNS)
def test_defaults_write_no_parameters_and_non_defaults_round_trip(concern):
    assert to_params(concern()) == {}
    changed = {}
    for f in dataclasses.fields(concern):
        rule = f.metadata
        if "choices" in rule:
            changed[f.name] = next(c for c in rule["choices"] if c != f.default)
        elif "range" in rule:
            changed[f.name] = type(f.default)(rule["range"][1])
        elif isinstance(f.default, bool):
            changed[f.name] = not f.default
        else:
            changed[f.name] = f.default + "x" if isinstance(f.default, str) else f.default
    choice = concern(**changed)
    again, problems = from_params(concern, to_params(choice))
    # The data concern writes only its own kind's arguments (DataChoice.unused): the others come back as defaults.
    unused = choice.unused() if hasattr(choice, "unused") else set()
    assert again == concern(**{k: v for k, v in changed.items() if k not in unused}) and problems == []


@pytest.mark.parametrize("dataset,kept", [("zip", "zip_path"), ("folder", "folder_path"), ("shapes", "shapes_n")])
def test_a_dataset_kinds_arguments_leave_the_url_with_it(dataset, kept):
    """Issue 23: a zip_path stayed in the URL after switching back to mnist5k."""
    chosen = DataChoice(dataset=dataset, zip_path="/u/a.zip", folder_path="/data/x", shapes_n=300, limit=100)
    assert kept in to_params(chosen) and to_params(chosen)["limit"] == "100"
    back = to_params(dataclasses.replace(chosen, dataset="mnist5k"))
    assert back == {"limit": "100"}


@pytest.mark.parametrize("params,problem_text", [
    ({"image_size": "33"}, "image_size=33 is not one of the choices"),
    ({"image_size": "abc"}, "image_size='abc' is not a whole number"),
    ({"limit": "-5"}, "limit=-5 is outside 0-1000000"),
    ({"seed": "99999999999999999999"}, "outside"),
    ({"min_dist": "nan"}, "min_dist must be a finite number"),
    ({"min_dist": "inf"}, "min_dist must be a finite number"),
    ({"reproducible": "maybe"}, "reproducible='maybe' is not true or false"),
    ({"ft_lr_head": "nan"}, "ft_lr_head must be a finite number"),
    ({"ft_lr_backbone": "-1"}, "outside"),
    ({"knn_t": "0"}, "outside"),
    ({"weights": "evil"}, "not one of the choices"),
    ({"map_dims": "2.5"}, "not a whole number"),
])
def test_a_bad_link_value_keeps_the_default_and_says_why(params, problem_text):
    name = next(iter(params))
    concern = next(c for c in CONCERNS if name in {f.name for f in dataclasses.fields(c)})
    choice, problems = from_params(concern, params)
    assert choice == concern() and len(problems) == 1 and problem_text in problems[0]


def test_booleans_are_read_by_name():
    assert from_params(MapChoice, {"reproducible": "False"})[0].reproducible is False
    assert from_params(MapChoice, {"reproducible": "true"})[0].reproducible is True
    assert convert(FinetuneChoice, "ft_augment", True) is True


def test_installation_choices_are_checked_when_given():
    options = {"dataset": ["mnist5k", "digits"], "backbone": ["tf_efficientnet_lite0"]}
    assert from_params(DataChoice, {"dataset": "digits"}, options)[0].dataset == "digits"
    choice, problems = from_params(DataChoice, {"dataset": "../../etc"}, options)
    assert choice.dataset == "mnist5k" and problems
    assert problem(BackboneChoice, "backbone", "nope", options["backbone"])


def test_choices_describe_the_configs_the_engine_runs():
    data = DataChoice(dataset="shapes", shapes_n=300, shapes_classes=4, limit=100, seed=3, zip_path="/ignored.zip")
    assert data.config() == DatasetConfig("shapes:n=300,classes=4", 100, 3)
    assert DataChoice(dataset="tv", tv_name="mnist", tv_split="test").spec() == "tv:mnist:test"
    assert DataChoice(dataset="folder", folder_path=" /data/x ").spec() == "folder:/data/x"
    backbone = BackboneChoice(weights="file", weights_path="/w/model.safetensors").config(seed=3)
    assert backbone.weights == "/w/model.safetensors" and backbone.seed == 3
    assert ExtractionChoice(image_size=96).config().image_size == 96
    assert MapChoice(map="tsne", map_dims=3, perplexity=20.0).config(seed=5) == ProjectionConfig(
        method="tsne", n_components=3, perplexity=20.0, seed=5)
    a = Source(data.config(), backbone, ExtractionChoice(image_size=96).config())
    b = CompareChoice(weights_b="bundled", image_size_b=160).source(a)
    assert b.dataset == a.dataset and b.backbone.weights == "bundled" and b.extraction.image_size == 160
    assert FinetuneChoice(ft_size=64, ft_mode="full").config().image_size == 64
    assert KNNChoice(knn_k=5).config().k == 5
