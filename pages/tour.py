"""Tour: when does pretraining help? Five live steps on the offline data, then the user's turn."""
import numpy as np
import streamlit as st

from pages.ui import settings
from pages.ui.choices import BackboneChoice, DataChoice, ExtractionChoice, MapChoice
from pages.ui.gallery import gallery
from pages.ui.i18n import _, ngettext, show_chart
from pages.ui.intervals import accuracy_metric, test_sentence
from pages.ui.lesson_views import begin_lesson, caption, end_lesson, mark_ran, section, text
from pages.ui.own_images_views import own_images_step, own_result
from pages.ui.pitfall_views import map_pitfalls_card
from pages.ui.question_views import ask, class_toggle, class_view, guesses, postponed, reveal_view, step_started
from pages.ui.services import job_manager
from pages.ui.text import md
from pages.ui.tour_views import (contrast_notice, contrast_view, efficiency_chart, efficiency_notice, estimate_text,
                                 next_step,
                                 finetune_curve, finetune_notice, kind_labels, lesson_chart, partial_rows, tour_step,
                                 vector_strip, zoo_chart)
from ptm_core.base import ProbeConfig, describe_map, describe_source
from ptm_core.flows import (TOUR_STEPS, VECTOR_SHOWN, TourPlan, adapted_test, dataset_size, page_plan,
                            efficiency_claim, step_seconds, step_spec, step_specs)

PLAN = page_plan()  # TourPlan() unless PTM_TOUR_SMALL=1 (tests): the "your turn" buttons then open the default's data
SHAPES_CHOICE = DataChoice(dataset="shapes", shapes_n=1000, shapes_classes=8, shapes_size=96, shapes_clutter=1)
DIGITS_CHOICE = DataChoice(dataset="mnist5k", limit=2000)
assert SHAPES_CHOICE.config() == TourPlan().shapes and DIGITS_CHOICE.config() == TourPlan().digits  # one truth


def step_neighbours() -> None:
    section(_("1 · What a backbone does"))
    text(_("A backbone turns each image into a vector of numbers (its features). Images whose vectors point "
           "the same way look alike to the network. Here: one shape of each of {q} classes, and the {k} "
           "images whose features are nearest (cosine similarity) among {n} cluttered shapes.").format(
        q=PLAN.queries, k=PLAN.neighbours, n=f"{dataset_size(PLAN.shapes):,}"))
    job = tour_step(1, step_spec(PLAN, "neighbours"), estimate=step_seconds(PLAN, "neighbours"), primary=NEXT == 1)
    if job is None:
        return
    result = job.result
    for query, neighbours, similarities, vector in zip(result.queries, result.neighbours, result.similarities,
                                                       result.vectors):
        names = [result.class_names[result.labels[i]] for i in [query, *neighbours]]
        captions = [_("query: {name}").format(name=names[0])] + [
            f"{name} · {sim:.2f}" for name, sim in zip(names[1:], similarities)]
        gallery(PLAN.shapes, [query, *neighbours], captions, feature_ids=result.ids, size=96)
        show_chart(vector_strip(np.asarray(vector)), width="stretch", key=f"vector-{query}")
    same = sum(result.labels[i] == result.labels[q] for q, found in zip(result.queries, result.neighbours)
               for i in found)
    total = sum(len(found) for found in result.neighbours)
    caption(_("Notice: {same} of the {total} neighbours share the query's shape, whatever its colour and "
                 "background. Each strip shows the first {shown} of the query's {dim} numbers. {source}.").format(
        same=same, total=total, shown=VECTOR_SHOWN, dim=result.feature_dim, source=result.produced_by))


def step_contrast(number: int, data_key: str) -> None:
    if data_key == "shapes":
        section(_("2 · Pixels vs random init vs pretrained, on shapes"))
        text(_("Three ways to turn the same images into vectors, each followed by the same linear probe "
                      "(logistic regression): the raw pixels, the backbone with random weights, and the backbone "
                      "pretrained on ImageNet."))
    else:
        section(_("3 · When it helps less: handwritten digits"))
        text(_("The same three on {n} MNIST digits.").format(n=f"{dataset_size(PLAN.digits):,}"))
    spec = step_spec(PLAN, data_key)
    ask(data_key, step_started(spec))
    job = tour_step(number, spec, estimate=step_seconds(PLAN, data_key), primary=NEXT == number,
                    live_extra=partial_rows)
    if job is None:
        return
    contrast_view(job.result, md(describe_map(PLAN.projection)))
    caption(contrast_notice(job.result, data_key))
    reveal_view(data_key, job.result)
    map_pitfalls_card(PLAN, job.result, data_key)


def step_own_images() -> None:
    section(_("Your photos: the same three on your own classes"))
    text(_("Steps 2 and 3 used the app's own images. Now yours: a few photos of each class, from the camera or "
           "uploaded, and the same three kinds of features, each with a linear probe. With a few dozen photos "
           "there is no separate test set: each photo is predicted by a probe trained on all the others "
           "(leave-one-out)."))
    ask("own_images", own_result() is not None)

    def reveal_and_note(result) -> None:
        mark_ran()
        reveal_view("own_images", result)

    own_images_step("tour", after_results=reveal_and_note)


def step_efficiency() -> None:
    section(_("4 · Labels are expensive"))
    text(_("How many labelled images does each class need? The same test images, with only {lo} to {hi} "
           "labelled training images per class; the mean over {n} random draws of the labelled images, with "
           "its 95 % t-interval.").format(lo=min(PLAN.ks), hi=max(PLAN.ks), n=len(PLAN.seeds)))
    spec = step_spec(PLAN, "efficiency")
    ask("efficiency", step_started(spec))
    job = tour_step(4, spec, estimate=step_seconds(PLAN, "efficiency"), primary=NEXT == 4)
    if job is None:
        return
    names = {PLAN.shapes.spec: _("cluttered shapes"), PLAN.digits.spec: _("MNIST digits")}
    show_chart(efficiency_chart(job.result, names), width="stretch", key="efficiency")
    notices = [efficiency_notice(efficiency_claim(job.result, spec), names[spec], len(PLAN.seeds))
               for spec in (PLAN.shapes.spec, PLAN.digits.spec)]
    caption(" ".join(notices) + " " + md(" · ".join(sorted({p.produced_by for p in job.result}))))
    reveal_view("efficiency", efficiency_claim(job.result, PLAN.shapes.spec))  # its question is on the shapes


def live_finetune(job) -> None:
    if job.metrics.get("val_curve"):
        show_chart(finetune_curve(job.metrics, None), width="stretch", key=f"ft-live-{job.id}")


def step_finetune() -> None:
    section(_("5 · Frozen vs adapted"))
    config = PLAN.finetune
    epochs = ngettext("{n} epoch", "{n} epochs", config.epochs).format(n=config.epochs)
    text(_("A linear probe keeps the backbone frozen. LP-FT starts from that probe and then trains every "
           "weight for {epochs} at {size} px (Kumar et al., 2022): can adapting the features close "
           "the domain gap that step 3 showed? Half of the {n} digits are kept for the test, so that a gain "
           "of a few points can be told from luck.").format(
        epochs=epochs, size=config.image_size, n=f"{PLAN.finetune_limit:,}"))
    job = tour_step(5, step_spec(PLAN, "finetune"), estimate=step_seconds(PLAN, "finetune"), primary=NEXT == 5,
                    live_extra=live_finetune)
    if job is None:
        return
    result, source = job.result, PLAN.finetune_source()
    cols = st.columns(2)
    produced_by = md(describe_source(source.dataset, source.backbone, config.image_size))
    accuracy_metric(cols[0], _("Linear probe (frozen)"), result.lp_test_accuracy, result.n_test, produced_by)
    accuracy_metric(cols[1], _("LP-FT (adapted)"), result.test_accuracy, result.n_test, produced_by)
    tested = {"frozen": result.lp_test_accuracy, "adapted": result.test_accuracy, "n_test": result.n_test}
    show_chart(finetune_curve(job.metrics, tested), width="stretch", key="ft-done")
    step3_test = int(round(dataset_size(PLAN.digits) * ProbeConfig().test_size))
    caption(finetune_notice(result, adapted_test(result)) + " " + _(
        "The line is LP-FT on its {n_val} validation images as it trains; the diamonds are both models on the "
        "{n_test} test images. Step 3's probe was scored on {n3} of {d3} digits at {s3} px; here both are scored on "
        "{n_test} of {d5} digits at {s5} px, the size the fine-tune trains at, so the frozen probe's number differs "
        "from step 3's. {source}.").format(
        n_val=f"{result.n_val:,}", n_test=f"{result.n_test:,}", n3=f"{step3_test:,}",
        d3=f"{dataset_size(PLAN.digits):,}", s3=PLAN.image_size, d5=f"{PLAN.finetune_limit:,}",
        s5=config.image_size, source=produced_by))


def step_lesson() -> None:
    section(_("6 · Is the difference real?"))
    sizes = ", ".join(f"{n:,}" for n in PLAN.lesson_sizes)
    text(_("An accuracy measured on a few test images is only roughly known. The same two probes, pretrained "
           "and random-init features of {n} MNIST digits, each scored on the first {sizes} of the same test "
           "images: each bar carries its 95 % CI (Wilson), and McNemar's exact test looks only at the "
           "images one probe gets right and the other wrong.").format(
        n=f"{dataset_size(PLAN.lesson):,}", sizes=sizes))
    job = tour_step(6, step_spec(PLAN, "lesson"), estimate=step_seconds(PLAN, "lesson"), primary=NEXT == 6)
    if job is None:
        return
    result = job.result
    names = kind_labels()
    show_chart(lesson_chart(result), width="stretch", key="lesson")
    text("\n".join(
        "- " + _("**{n} test images:** {sentence}").format(
            n=f"{size.n:,}", sentence=test_sentence(names["pretrained"], names["random"], size.test))
        for size in result.sizes))
    caption(_("Notice: the intervals shrink as the test grows, and only then can the test tell a real difference "
                 "from the luck of the split. {source}").format(
        source=md(" · ".join(result.produced_by.values()))))


def step_zoo() -> None:
    section(_("7 · A bigger or different backbone?"))
    text(_("Step 2 used {backbone}. Does a bigger EfficientNet, an older and smaller SqueezeNet, or a MobileNetV2 "
           "whose last blocks were retrained on dog breeds see the same {n} shapes better? Every backbone whose "
           "weights ship with the app, each followed by the same linear probe on the same split, at {size} px."
                  ).format(backbone=PLAN.backbone.name, n=f"{dataset_size(PLAN.shapes):,}", size=PLAN.image_size))
    job = tour_step(7, step_spec(PLAN, "zoo"), estimate=step_seconds(PLAN, "zoo"), primary=NEXT == 7)
    if job is None:
        return
    result = job.result
    show_chart(zoo_chart(result), width="stretch", key="zoo")
    text("\n".join(f"- {test_sentence(md(row.backbone.name), md(result.reference), row.test)}"
                           for row in result.rows if row.test is not None))
    caption(_("Notice: each sentence is McNemar's test against {reference} on the same test images: a bigger "
                 "backbone is not better unless its test says so. {source}").format(
        reference=md(result.reference), source=md(" · ".join(row.produced_by for row in result.rows))))


def open_with(choice: DataChoice, page: str) -> None:
    settings.put(choice)
    settings.update(BackboneChoice, backbone=PLAN.backbone.name, weights=PLAN.backbone.weights)
    settings.update(ExtractionChoice, image_size=PLAN.image_size)
    settings.update(MapChoice, map=PLAN.projection.method)
    st.switch_page(page)


def step_your_turn() -> None:
    st.header(_("8 · Your turn"))
    # One per line: in three columns the lab's label was cut ("Race probe and fine-tune on digits in…"), and more
    # so in presenter mode or in Chinese.
    if st.button(_("Open the shapes in the explorer"), icon=":material/scatter_plot:", key="tour-open-explore"):
        open_with(SHAPES_CHOICE, "pages/explore.py")
    if st.button(_("Race probe and fine-tune on digits in the lab"), icon=":material/science:", key="tour-open-lab"):
        open_with(DIGITS_CHOICE, "pages/lab.py")
    if st.button(_("Compare two backbones on the shapes"), icon=":material/compare:", key="tour-open-compare"):
        open_with(SHAPES_CHOICE, "pages/compare.py")
    st.markdown(_("**Your own images:** choose *folder* or *zip* as the dataset in the sidebar (one sub-folder per "
                  "class, or images plus a labels CSV); the Datasets page shows what was read.\n\n"
                  "**Any timm model:** online, pick a model and *Hugging Face hub* weights; the Backbones page "
                  "lists every model with pretrained weights."))


def run_everything() -> None:
    """Queue every step; they run one after another while the page is read."""
    for spec in step_specs(PLAN):
        job_manager().attach(spec, start=True)


STEP_QUESTIONS = {2: "shapes", 3: "digits", 4: "efficiency"}  # step number -> its predict-then-reveal question


def next_question() -> str | None:
    """The question class mode poses next: "your photos" once steps 1-3 have run, until the class has learned from
    its photos, guessed, or the teacher sent the question back; else the next step's."""
    number = next_step(step_specs(PLAN))
    if (number is None or number > 3) and own_result() is None and not {"own_images"} & (set(guesses()) | postponed()):
        return "own_images"
    return STEP_QUESTIONS.get(number)


class_toggle()
if class_view(next_question()):
    st.stop()  # class mode: the next step's question alone, nothing else of the tour
st.title(_("When does pretraining help?"))
INTRO = _("A short tour, computed live on this machine from offline data: {backbone} with ImageNet weights, "
          "at {size} px. Each step runs once (then it is cached); its time estimate is on its button.").format(
    backbone=PLAN.backbone.name, size=PLAN.image_size)
st.markdown(INTRO)
begin_lesson(_("When does pretraining help?"), INTRO)
total = sum(step_seconds(PLAN, step) for step in TOUR_STEPS)
if st.button(_("Run every step ({estimate})").format(estimate=estimate_text(total)), key="tour-run-all",
             icon=":material/playlist_play:"):
    run_everything()
LESSON_BUTTON = st.empty()  # filled at the end, once every step has noted what it showed
NEXT = next_step(step_specs(PLAN))  # step 2's button is not primary before step 1 has run
step_neighbours()
step_contrast(2, "shapes")
step_contrast(3, "digits")
step_own_images()
step_efficiency()
step_finetune()
step_lesson()
step_zoo()
step_your_turn()
end_lesson(LESSON_BUTTON)
