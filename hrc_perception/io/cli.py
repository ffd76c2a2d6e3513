"""``hrc-perception bop2coco``: COCO masks of a real BOP scene."""
from __future__ import annotations

from pathlib import Path

from hrc_perception.cli_args import Commands


def _bop2coco(args) -> int:
    from hrc_perception.io.bop_coco import bop_scene_to_coco
    summary = bop_scene_to_coco(Path(args.scene), Path(args.models), Path(args.out), mesh_units=args.mesh_units)
    print(f"wrote {args.out}/annotations.json: {summary['images']} images, instances {summary['instances']}")
    return 0


def register(commands: Commands) -> None:
    c = commands.top.add_parser("bop2coco", help="COCO masks of a real BOP scene, rendered from its ground-truth "
                                                 "poses")
    c.add_argument("--scene", required=True, help="BOP scene folder (scene_gt.json, scene_camera.json, rgb/)")
    c.add_argument("--models", required=True, help="folder of obj_NNNNNN.ply meshes")
    c.add_argument("--mesh-units", default="mm", choices=["m", "mm"])
    c.add_argument("--out", required=True, help="output folder (annotations.json, images/)")
    c.set_defaults(func=_bop2coco)
