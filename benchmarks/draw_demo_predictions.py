"""Draw a model's demo-val predictions next to the ground truth, a row per view (front / side / back).

Input: the ``val_coco_results.json`` a validation run exports (``lightning-pose validate --config
configs/quickstart.yaml --ckpt_path CKPT --model.init_args.export_dir DIR``) and the demo data set it was scored on
(``~/.cache/lightning_pose/demo-*`` by default). Each result is matched to the val annotation of its image whose box
centre is nearest to the predicted keypoints' mean; the tile is that person's box (15 % margin), 192 px tall.
Predictions are dots, labelled ground-truth joints crosses; left joints green, right red, centre joints cyan, so a
left/right swap shows as a red dot on a green cross. The demo annotations' ``demo_view`` gives the row.

    python3 benchmarks/draw_demo_predictions.py DIR/val_coco_results.json out.jpg [--per-view 6] [--demo-root PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from lightning_pose.skeletons import get_keypoint_set

VIEWS = ("front", "side", "back")
TILE_H, TILE_W = 192, 160


def _demo_root(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    found = sorted((Path.home() / ".cache" / "lightning_pose").glob("demo-*/annotations/person_keypoints_val.json"))
    if not found:
        raise SystemExit("no demo data under ~/.cache/lightning_pose: pass --demo-root")
    return found[0].parents[1]


def _colour(index: int, names: list[str]) -> tuple[int, int, int]:  # BGR
    name = names[index]
    return (0, 200, 0) if name.startswith("left") else (0, 0, 255) if name.startswith("right") else (255, 255, 0)


def draw(results: list[dict], root: Path, per_view: int) -> np.ndarray:
    gt = json.loads((root / "annotations" / "person_keypoints_val.json").read_text(encoding="utf-8"))
    images = {i["id"]: i for i in gt["images"]}
    by_image: dict[int, list[dict]] = {}
    for a in gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    names = list(get_keypoint_set("coco").keypoints)
    tiles: dict[str, list[np.ndarray]] = {v: [] for v in VIEWS}
    for r in results:
        pred = np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3)
        centre = pred[:, :2].mean(axis=0)
        ann = min(
            by_image[r["image_id"]],
            key=lambda a: float(np.linalg.norm(np.add(a["bbox"][:2], np.divide(a["bbox"][2:], 2)) - centre)),
        )
        view = ann.get("demo_view")
        if view not in tiles or len(tiles[view]) >= per_view:
            continue
        image = cv2.imread(str(root / "val" / images[r["image_id"]]["file_name"]))
        x, y, w, h = ann["bbox"]
        pad = 0.15 * max(w, h)
        x0, y0 = int(max(0, x - pad)), int(max(0, y - pad))
        x1, y1 = int(min(image.shape[1], x + w + pad)), int(min(image.shape[0], y + h + pad))
        s = TILE_H / max(1, y1 - y0)
        tile = cv2.resize(image[y0:y1, x0:x1], (max(1, int((x1 - x0) * s)), TILE_H))
        truth = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        for k in range(len(names)):
            cv2.circle(tile, (int((pred[k, 0] - x0) * s), int((pred[k, 1] - y0) * s)), 3, _colour(k, names), -1)
            if truth[k, 2] > 0:
                at = (int((truth[k, 0] - x0) * s), int((truth[k, 1] - y0) * s))
                cv2.drawMarker(tile, at, _colour(k, names), cv2.MARKER_CROSS, 6, 1)
        cv2.putText(tile, view, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        tile = cv2.copyMakeBorder(tile, 0, 0, 0, max(0, TILE_W - tile.shape[1]), cv2.BORDER_CONSTANT)[:, :TILE_W]
        tiles[view].append(tile)
    rows = [np.concatenate(t + [np.zeros_like(t[0])] * (per_view - len(t)), axis=1) for t in tiles.values() if t]
    if not rows:
        raise SystemExit("no result matched a val annotation with a demo_view")
    return np.concatenate(rows, axis=0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--per-view", type=int, default=6)
    ap.add_argument("--demo-root", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.out.resolve() == args.results.resolve():
        raise SystemExit(f"{args.out}: the output would overwrite the input")
    sheet = draw(json.loads(args.results.read_text(encoding="utf-8")), _demo_root(args.demo_root), args.per_view)
    tmp = args.out.with_name(args.out.name + ".tmp" + args.out.suffix)
    if not cv2.imwrite(str(tmp), sheet, [cv2.IMWRITE_JPEG_QUALITY, 85]):
        raise SystemExit(f"{args.out}: could not write the image")
    tmp.replace(args.out)
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]} px)")


if __name__ == "__main__":
    main()
