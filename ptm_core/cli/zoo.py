"""The bundled zoo on the command line: `models --bundled` and `predict`."""
from __future__ import annotations

import argparse
import time

from ptm_core.base.configs import BackboneConfig
from ptm_core.base.text import dumps, printable


def print_bundled(as_json: bool) -> int:
    from ptm_core.models.catalog import bundled_zoo

    rows = bundled_zoo()
    if as_json:
        print(dumps(rows))
        return 0
    for row in rows:
        head = "ImageNet head" if row["imagenet_head"] else f"{row['num_classes']}-class head"
        print(f"{row['name']:<24} {row['family']:<18} {row['params_m']:>5.2f} M  {row['feature_dim']:>5}-d  "
              f"{head:<15} {row['weights']}  [pip: {row['package']}=={row['version']}]")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ptm_core.models.predict import classifier, predict_image, read_image
    from ptm_core.models.weights import check_model_name

    check_model_name(args.backbone)  # an unknown name fails before the image is read
    image = read_image(args.image)
    config = BackboneConfig(args.backbone, args.weights, args.init_seed)
    started = time.perf_counter()
    classifier(config)
    load_seconds = time.perf_counter() - started
    prediction = predict_image(config, image, args.top)
    if args.json:
        print(dumps({**prediction.to_dict(), "image": args.image, "load_seconds": load_seconds}))
        return 0
    print(f"{printable(args.image)}: {prediction.backbone} ({prediction.weights}) at {prediction.image_size} px, "
          f"{prediction.classes}")
    for rank, guess in enumerate(prediction.top, 1):
        print(f"{rank:>3}. {guess.probability:7.2%}  {guess.index:>4}  {guess.label}")
    return 0
