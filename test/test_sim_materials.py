"""Rich materials: valid draws of every kind; two-colour patterns render both colours."""
import numpy as np
import trimesh

from hrc_perception.geometry import look_at, make_K
from hrc_perception.sim.materials import RICH_KINDS, TEXTURES, Material, rich_material
from hrc_perception.sim.renderer import Lighting, PointLight, Renderer, placed_item


def test_rich_materials_are_valid_and_varied():
    rng = np.random.default_rng(0)
    mats = [rich_material(rng) for _ in range(300)]
    for m in mats:
        assert m.texture in TEXTURES
        assert all(0 <= c <= 1 for c in m.albedo) and (m.albedo2 is None or all(0 <= c <= 1 for c in m.albedo2))
        assert 0 <= m.texture_contrast <= 1 and 0 <= m.specular <= 1 and m.texture_scale_m > 0
    assert {m.texture for m in mats} == set(TEXTURES)
    assert sum(m.albedo2 is not None for m in mats) > 100 and len(RICH_KINDS) == 6
    spec = np.array([m.specular for m in mats])
    assert spec.min() < 0.05 and spec.max() > 0.8          # matte to glossy


def _render_plane(material: Material) -> np.ndarray:
    """A 1 m square plane at z = 0 seen from 1.5 m straight above, lit by ambient light only."""
    plane = trimesh.Trimesh([[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0]], [[0, 1, 2], [0, 2, 3]],
                            process=False)
    item = placed_item(plane, np.eye(4), 0, material)
    lighting = Lighting((PointLight(np.array([0.0, 0.0, 3.0]), 0.0, np.ones(3)),), ambient=1.0, exposure=1.0,
                        white_balance=np.ones(3, np.float32), noise_sigma=0.0,
                        background_rgb=np.zeros(3, np.float32), shadows=False)
    r = Renderer(64, 64)
    T = look_at(np.array([0.0, 1e-3, 1.5]), np.zeros(3))
    out = r.render("plane", [item], [], make_K(100, 100, 32, 32), T, lighting, np.random.default_rng(0))
    return out.rgb[16:48, 16:48].reshape(-1, 3).astype(int)


def test_two_colour_patterns_show_both_colours():
    white, black = (0.9, 0.9, 0.9), (0.03, 0.03, 0.03)
    marker = _render_plane(Material(white, "checker", 0.1, 1.0, 0.0, albedo2=black))
    light = marker[:, 0] > 0.9 ** (1 / 2.2) * 255 - 3
    dark = marker[:, 0] < 0.03 ** (1 / 2.2) * 255 + 3
    assert (light | dark).mean() > 0.95 and 0.3 < light.mean() < 0.7
    # half contrast: half-way (in linear light) to the second colour
    half = _render_plane(Material(white, "checker", 0.1, 0.5, 0.0, albedo2=black))
    assert abs(half[:, 0].min() - ((0.9 + 0.03) / 2) ** (1 / 2.2) * 255) < 3
    # without a second colour the pattern scales the albedo: 0.5 x (1 +- 0.8) here
    one = _render_plane(Material((0.5, 0.5, 0.5), "checker", 0.1, 0.8, 0.0))
    assert abs(one[:, 0].max() - 0.9 ** (1 / 2.2) * 255) < 3 and abs(one[:, 0].min() - 0.1 ** (1 / 2.2) * 255) < 3
    # each of the new patterns varies over the plane
    for texture in ("wood", "print", "brushed"):
        img = _render_plane(Material(white, texture, 0.05, 1.0, 0.0, albedo2=black))
        assert img[:, 0].std() > 20, texture
