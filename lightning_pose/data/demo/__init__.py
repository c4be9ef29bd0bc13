"""Built-in demo data: procedurally drawn synthetic people written as a COCO keypoint dataset.

No dataset can be downloaded in the quickstart, so this package draws one: articulated figures with the
17 COCO keypoints (kinematic tree, sampled poses and views), front/back cues as on real people (face, neckline,
chest print, hair at the back, far-side limbs in shadow; no fixed left/right colour code),
cluttered backgrounds, occluders and several people per image. numpy + cv2 only (no torch).

Public entry points::

    ensure_demo_dataset(root=None, *, seed=0, num_train=1200, num_val=200, image_size=(256, 256), max_people=3)
    generate_demo_split(out_dir, num_images, *, seed, split, image_size=(256, 256), max_people=3)
    render_scene(rng, image_size=(256, 256), max_people=3)   # one image + annotations in memory
"""

from .scene import RenderedPerson, Scene, render_scene
from .writer import (
    DEMO_VERSION,
    default_cache_root,
    demo_dataset_name,
    ensure_demo_dataset,
    generate_demo_split,
    is_complete_demo_dataset,
)

__all__ = [
    "DEMO_VERSION",
    "RenderedPerson",
    "Scene",
    "default_cache_root",
    "demo_dataset_name",
    "ensure_demo_dataset",
    "generate_demo_split",
    "is_complete_demo_dataset",
    "render_scene",
]
