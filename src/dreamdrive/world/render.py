"""The moderngl renderer of the procedural world (EGL, headless; Mesa llvmpipe on a CPU).

One pass per camera writes, with multiple render targets: lit RGB; the
camera-frame normal and metric depth (z along the optical axis); the instance
index and semantic class. A sun shadow map, rendered once per frame around
the ego, is shared by the six cameras. Time of day (day, dusk, night with
headlights and street lights) and weather (clear, rain, fog) are scene
parameters. The same machinery renders depth panoramas for the simulated LiDAR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dreamdrive.core.camera import Camera, CameraRig, level_camera_rotation
from dreamdrive.core.conventions import TIMES_OF_DAY, WEATHERS
from dreamdrive.core.errors import DreamdriveError
from dreamdrive.core.geometry import Transform
from dreamdrive.world.assets import GLASS, HEADLIGHT, PAINT, TAILLIGHT
from dreamdrive.world.geometry import BUILDING, FLOATS_PER_VERTEX, SEMANTIC, lamp_positions, town_soup

NEAR, FAR = 0.1, 400.0
_GROUND_LEVEL = ("terrain", "road", "lane_marking", "crossing", "sidewalk")  # cast no shadow worth drawing
MAX_LIGHTS = 16
_LIT, _SHADOW, _GEOMETRY = 0, 1, 2  # the renderer's passes
# The GL eye frame looks down -z with y up; the camera frame looks down +z with y down.
EYE_T_CAM = np.diag([1.0, -1.0, -1.0, 1.0])

# The material codes the lit shader treats specially (a vertex colour's alpha), from their Python definitions.
MATERIALS = {"BUILDING": BUILDING, "PAINT": PAINT, "GLASS": GLASS, "HEADLIGHT": HEADLIGHT, "TAILLIGHT": TAILLIGHT}


def glsl_constants() -> str:
    """GLSL constants for the semantic ids (`SEM_ROAD`, ...) and material codes (`MAT_PAINT`, ...), generated
    from `world.geometry.SEMANTIC` and `MATERIALS` so that the shaders and the Python side cannot disagree."""
    semantic = [f"const int SEM_{name.upper()} = {index};" for name, index in SEMANTIC.items()]
    materials = [f"const float MAT_{name} = {code:.1f};" for name, code in MATERIALS.items()]
    return "\n".join(semantic + materials) + "\n"


# The render targets every camera pass writes (`WorldRenderer._framebuffer` makes them): lit RGB; camera-frame
# normal and depth; instance and class.
_TARGETS = """
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec4 out_geom;
layout(location = 2) out ivec2 out_ids;
"""

_VERTEX = """
#version 330
uniform mat4 model;
uniform mat4 view_proj;
in vec3 in_pos;
in vec3 in_normal;
in vec4 in_color;
in float in_semantic;
out vec3 v_world;
out vec3 v_normal;
out vec4 v_color;
flat out int v_semantic;
void main() {
    vec4 world = model * vec4(in_pos, 1.0);
    v_world = world.xyz;
    v_normal = mat3(model) * in_normal;
    v_color = in_color;
    v_semantic = int(in_semantic + 0.5);
    gl_Position = view_proj * world;
}
"""

_FRAGMENT = (
    """
#version 330
"""
    + glsl_constants()
    + """
uniform vec3 cam_pos;
uniform mat3 cam_rot;          // cam_R_global
uniform vec3 sun_dir;          // towards the sun
uniform vec3 sun_color;
uniform vec3 sky_ambient;
uniform vec3 ground_ambient;
uniform sampler2DShadow shadow_map;
uniform mat4 light_view_proj;
uniform int instance;
uniform int lights_on;
uniform float wetness;
uniform float night;
uniform vec3 fog_color;
uniform float fog_density;
uniform int n_lights;
uniform vec3 light_pos[16];
uniform vec3 light_dir[16];
uniform vec3 light_color[16];
uniform float light_cos[16];
in vec3 v_world;
in vec3 v_normal;
in vec4 v_color;
flat in int v_semantic;
"""
    + _TARGETS
    + """
float hash(vec2 p) {  // "hash without sine" (Dave Hoskins): no transcendental, cheap on a CPU rasterizer
    vec3 p3 = fract(vec3(p.xyx) * 0.1031);
    p3 += dot(p3, p3.yzx + 33.33);
    return fract((p3.x + p3.y) * p3.z);
}
float noise(vec2 p) {
    vec2 i = floor(p), f = fract(p);
    vec2 u = f * f * (3.0 - 2.0 * f);
    return mix(mix(hash(i), hash(i + vec2(1, 0)), u.x), mix(hash(i + vec2(0, 1)), hash(i + vec2(1, 1)), u.x), u.y);
}

float shadow_at(vec3 world, vec3 n) {
    vec4 ls = light_view_proj * vec4(world + n * 0.04, 1.0);
    vec3 c = ls.xyz / ls.w * 0.5 + 0.5;
    if (c.x <= 0.0 || c.x >= 1.0 || c.y <= 0.0 || c.y >= 1.0 || c.z >= 1.0) return 1.0;
    // one tap: the sampler's linear filter gives 2x2 percentage-closer filtering in hardware
    return texture(shadow_map, vec3(c.xy, c.z - 0.0015));
}

// llvmpipe runs every branch of a fragment shader under a mask, so the shading below avoids
// per-surface branches with work in them: one grain lookup for every surface, powers by squaring
void main() {
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
    float material = floor(v_color.a * 255.0 + 0.5);
    bool road = v_semantic == SEM_ROAD;
    bool ground = v_semantic == SEM_SIDEWALK || v_semantic == SEM_TERRAIN;
    bool marking = v_semantic == SEM_LANE_MARKING || v_semantic == SEM_CROSSING;
    // grain: asphalt (darker and shinier when wet, with a coarse second octave), sidewalk and grass, paint
    float scale = road ? 3.0 : (ground ? 1.5 : 8.0);
    vec2 grain = vec2(noise(v_world.xy * scale), noise(v_world.xy * 0.3));
    vec3 albedo = v_color.rgb;
    if (road) albedo *= (0.8 + 0.35 * grain.x + 0.1 * grain.y) * (1.0 - 0.45 * wetness);
    if (ground) albedo *= 0.85 + 0.3 * grain.x;
    if (marking) albedo *= 0.9 + 0.1 * grain.x;
    float shine = road ? 0.6 * wetness : (marking ? 0.3 * wetness : 0.0);
    vec3 emit = vec3(0.0);
    if (material == MAT_BUILDING && abs(n.z) < 0.5) {  // building walls: a grid of windows, some lit at night
        vec2 facade = vec2(dot(v_world.xy, vec2(-n.y, n.x)), v_world.z);
        vec2 cell = fract(facade / vec2(3.0, 3.2));
        if (cell.x > 0.25 && cell.x < 0.75 && cell.y > 0.3 && cell.y < 0.8 && v_world.z > 1.0) {
            albedo = vec3(0.12, 0.14, 0.17);
            shine = 0.5;
            if (hash(floor(facade / vec2(3.0, 3.2))) > 0.55) emit = vec3(1.0, 0.8, 0.5) * 0.6 * night;
        }
    }
    if (material == MAT_PAINT) shine = 0.35;
    if (material == MAT_GLASS) { shine = 0.8; albedo *= 0.7; }
    if (lights_on == 1 && material == MAT_HEADLIGHT) emit = albedo * 2.5;  // headlights, lamp heads
    if (lights_on == 1 && material == MAT_TAILLIGHT) emit = albedo * 2.0;

    float shadow = shadow_at(v_world, n);
    vec3 light = sun_color * max(dot(n, sun_dir), 0.0) * shadow;
    light += mix(ground_ambient, sky_ambient, n.z * 0.5 + 0.5);
    vec3 view = normalize(cam_pos - v_world);
    float r = max(dot(reflect(-sun_dir, n), view), 0.0);
    float r2 = r * r, r4 = r2 * r2, r8 = r4 * r4, r32 = r8 * r8 * r8 * r8;
    vec3 specular = sun_color * shadow * (r32 * r8) * shine;  // r^40
    for (int i = 0; i < n_lights; i++) {
        vec3 d = light_pos[i] - v_world;
        float dist2 = dot(d, d);
        vec3 l = d * inversesqrt(dist2);
        float fall = 1.0 / (1.0 + 0.12 * dist2);
        if (light_cos[i] > -1.0) fall *= smoothstep(light_cos[i], light_cos[i] + 0.08, dot(-l, light_dir[i]));
        light += light_color[i] * max(dot(n, l), 0.0) * fall;
        r = max(dot(reflect(-l, n), view), 0.0);
        r2 = r * r; r4 = r2 * r2; r8 = r4 * r4;
        specular += light_color[i] * fall * (r8 * r8 * r4 * r2) * shine;  // r^30
    }
    vec3 color = albedo * light + specular + emit;
    float dist = length(cam_pos - v_world);
    color = clamp(mix(fog_color, color, exp(-fog_density * dist)), 0.0, 1.0);
    vec3 root = sqrt(color);
    out_color = vec4(root * sqrt(sqrt(root)), 1.0);  // gamma: color^(1/1.6) = color^(1/2) * color^(1/8)
    vec3 rel = cam_rot * (v_world - cam_pos);
    out_geom = vec4(cam_rot * n, rel.z);
    out_ids = ivec2(instance, v_semantic);
}
"""
)

_GEOMETRY_FRAGMENT = (
    """
#version 330
"""
    + glsl_constants()
    + """
uniform vec3 cam_pos;
uniform mat3 cam_rot;          // cam_R_global
uniform int instance;
in vec3 v_world;
in vec3 v_normal;
flat in int v_semantic;
"""
    + _TARGETS
    + """void main() {
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
    out_color = vec4(0.0);
    out_geom = vec4(cam_rot * n, (cam_rot * (v_world - cam_pos)).z);
    out_ids = ivec2(instance, v_semantic);
}
"""
)

_SKY_VERTEX = """
#version 330
in vec2 in_pos;
void main() { gl_Position = vec4(in_pos, 1.0, 1.0); }
"""

_SKY_FRAGMENT = (
    """
#version 330
uniform mat3 ray_to_global;   // global_R_cam @ K^-1
uniform float height;
uniform vec3 horizon;
uniform vec3 zenith;
uniform vec3 sun_dir;
uniform vec3 sun_color;
uniform vec3 fog_color;
uniform float fog_mix;
"""
    + _TARGETS
    + """void main() {
    vec3 ray = normalize(ray_to_global * vec3(gl_FragCoord.x, height - gl_FragCoord.y, 1.0));
    float up = max(ray.z, 0.0);
    vec3 color = mix(horizon, zenith, pow(up, 0.6));
    color += sun_color * pow(max(dot(ray, sun_dir), 0.0), 600.0) * 2.0;
    color = mix(color, fog_color, fog_mix);
    out_color = vec4(pow(clamp(color, 0.0, 1.0), vec3(1.0 / 1.6)), 1.0);
    out_geom = vec4(0.0);
    out_ids = ivec2(0, 0);
}
"""
)

_SHADOW_VERTEX = """
#version 330
uniform mat4 model;
uniform mat4 view_proj;
in vec3 in_pos;
void main() { gl_Position = view_proj * model * vec4(in_pos, 1.0); }
"""

_SHADOW_FRAGMENT = """
#version 330
void main() {}
"""


@dataclass(frozen=True)
class Environment:
    """Scene parameters: time of day, weather and the sun's azimuth (radians, global frame)."""

    time_of_day: str = "day"
    weather: str = "clear"
    sun_azimuth: float = 0.8

    def __post_init__(self) -> None:
        if self.time_of_day not in TIMES_OF_DAY:
            raise DreamdriveError(f"time of day {self.time_of_day!r} must be one of {TIMES_OF_DAY}.")
        if self.weather not in WEATHERS:
            raise DreamdriveError(f"weather {self.weather!r} must be one of {WEATHERS}.")

    @property
    def lights_on(self) -> bool:
        return self.time_of_day != "day" or self.weather == "fog"

    def uniforms(self) -> dict:
        elevation = {"day": 50.0, "dusk": 7.0, "night": -20.0}[self.time_of_day]
        sun_dir = np.array(
            [
                np.cos(self.sun_azimuth) * np.cos(np.radians(elevation)),
                np.sin(self.sun_azimuth) * np.cos(np.radians(elevation)),
                np.sin(np.radians(elevation)),
            ]
        )
        table = {  # sun colour, sky ambient, ground ambient, horizon, zenith
            "day": ((1.25, 1.2, 1.1), (0.42, 0.46, 0.55), (0.28, 0.27, 0.25), (0.78, 0.85, 0.95), (0.35, 0.55, 0.9)),
            "dusk": ((1.1, 0.6, 0.3), (0.32, 0.28, 0.35), (0.18, 0.14, 0.13), (0.95, 0.6, 0.35), (0.25, 0.3, 0.55)),
            "night": ((0.0, 0.0, 0.0), (0.05, 0.06, 0.1), (0.03, 0.03, 0.04), (0.06, 0.07, 0.12), (0.01, 0.01, 0.04)),
        }
        sun, sky, ground, horizon, zenith = (np.array(v) for v in table[self.time_of_day])
        fog_density, wetness = 0.0, 0.0
        fog_color = horizon
        if self.weather == "rain":
            sun, sky, ground = sun * 0.25, sky * 0.8, ground * 0.8
            horizon, zenith = horizon * 0.7 + 0.1, horizon * 0.6 + 0.1
            fog_density, wetness, fog_color = 0.008, 1.0, horizon
        elif self.weather == "fog":
            sun = sun * 0.3
            fog_color = np.clip(horizon * 0.6 + 0.35, 0, 1) * (1.0 if self.time_of_day == "day" else 0.3)
            fog_density, wetness = 0.035, 0.3
        return dict(
            sun_dir=sun_dir,
            sun_color=sun,
            sky_ambient=sky,
            ground_ambient=ground,
            horizon=horizon,
            zenith=zenith,
            fog_color=fog_color,
            fog_density=fog_density,
            wetness=wetness,
            night=1.0 if self.time_of_day == "night" else (0.5 if self.time_of_day == "dusk" else 0.0),
        )


@dataclass(frozen=True)
class RenderObject:
    """One object in a frame: which mesh, where (global_T_object), its instance index (>= 1), lights on."""

    mesh_key: str
    global_T_object: Transform
    instance: int
    lights: bool = False


@dataclass
class CameraImages:
    """Per-camera render outputs, each (H, W, ...) with row 0 at the top."""

    rgb: np.ndarray  # uint8 (H, W, 3); the arrays may be read-only views of the render targets
    depth: np.ndarray  # float32 (H, W): camera-frame z in metres, 0 where nothing was hit
    normal: np.ndarray  # float32 (H, W, 3): unit normals in the camera frame, 0 where nothing was hit
    instance: np.ndarray  # int32 (H, W): object instance index, 0 for static scenery and sky
    semantic: np.ndarray  # (H, W) integers: index into SEMANTIC_NAMES


def projection_matrix(
    intrinsic: np.ndarray, width: int, height: int, near: float = NEAR, far: float = FAR
) -> np.ndarray:
    """The OpenGL projection that maps the GL eye frame to clip space so that window pixels match `intrinsic`."""
    fx, fy, cx, cy = intrinsic[0, 0], intrinsic[1, 1], intrinsic[0, 2], intrinsic[1, 2]
    return np.array([
        [2 * fx / width, 0.0, 1 - 2 * cx / width, 0.0],
        [0.0, 2 * fy / height, 2 * cy / height - 1, 0.0],
        [0.0, 0.0, -(far + near) / (far - near), -2 * far * near / (far - near)],
        [0.0, 0.0, -1.0, 0.0],
    ])  # fmt: skip


TILE_SIZE = 40.0
VIEW_RANGE = 300.0  # metres beyond which scenery is not drawn


@dataclass(frozen=True)
class _Tiles:
    """The town's triangles sorted into square tiles, each with a bounding sphere, for culling."""

    ranges: np.ndarray  # (T, 2) first vertex and vertex count of each tile
    centres: np.ndarray  # (T, 3)
    radii: np.ndarray  # (T,)
    last: tuple[int, int]  # first vertex and count of the oversized triangles (the ground), drawn last

    def in_view(self, camera: Camera, cam_T_global: Transform) -> np.ndarray:
        """(T,) tiles whose sphere touches the camera's viewing frustum (up to VIEW_RANGE)."""
        return _spheres_in_view(camera, cam_T_global, self.centres, self.radii)


def _spheres_in_view(camera: Camera, cam_T_global: Transform, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(N,) spheres (global centres, radii) that touch the camera's viewing frustum (up to VIEW_RANGE)."""
    if len(centres) == 0:
        return np.zeros(0, dtype=bool)
    c = cam_T_global.apply(centres)
    fx, fy, cx, cy = camera.intrinsic[0, 0], camera.intrinsic[1, 1], camera.intrinsic[0, 2], camera.intrinsic[1, 2]
    planes = np.array([[fx, 0, cx], [-fx, 0, camera.width - cx], [0, fy, cy], [0, -fy, camera.height - cy]])
    planes /= np.linalg.norm(planes, axis=1, keepdims=True)
    inside = np.all(c @ planes.T >= -radii[:, None], axis=1)
    return inside & (c[:, 2] > -radii) & (c[:, 2] < VIEW_RANGE + radii)


def _tile(rows: np.ndarray, size: float) -> tuple[np.ndarray, _Tiles]:
    """Reorder a triangle soup tile by tile (by centroid); triangles far larger than a tile go last."""
    triangles = rows.reshape(-1, 3, rows.shape[1])
    big = np.ptp(triangles[:, :, :2], axis=1).max(axis=1) > 4 * size
    oversized, triangles = triangles[big], triangles[~big]
    keys = np.floor(triangles[:, :, :2].mean(axis=1) / size).astype(np.int64)
    order = np.lexsort((keys[:, 1], keys[:, 0]))
    triangles, keys = triangles[order], keys[order]
    _, first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
    centres, radii = [], []
    for start, count in zip(first, counts):
        points = triangles[start : start + count, :, :3].reshape(-1, 3)
        lo, hi = points.min(axis=0), points.max(axis=0)
        centres.append((lo + hi) / 2)
        radii.append(np.linalg.norm(hi - lo) / 2)
    ranges = np.stack([first * 3, counts * 3], axis=1).reshape(-1, 2)
    width = rows.shape[1]
    rows = np.concatenate([triangles.reshape(-1, width), oversized.reshape(-1, width)])
    last = (len(triangles) * 3, len(oversized) * 3)
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 3)  # (0, 3) when every triangle is oversized
    return rows, _Tiles(ranges, centres, np.asarray(radii, dtype=np.float64).reshape(-1), last)


def _gl(matrix: np.ndarray) -> bytes:
    """A numpy matrix as GLSL reads it (column-major float32)."""
    return np.ascontiguousarray(np.asarray(matrix, dtype=np.float32).T).tobytes()


class WorldRenderer:
    """Renders a town and its objects from any camera.

    Args:
        town_rows: the town's static triangle soup (`geometry.town_soup`).
        meshes: triangle soups of the object meshes by key (`geometry.mesh_soup`).
        width, height: the camera image size it expects (others work too, with their own render targets).
        lamps: (N, 3) street-light positions, lit at dusk and night.
        shadow_size: pixels of the square sun shadow map; shadow_extent: metres it covers around the ego.
    """

    def __init__(
        self,
        town_rows: np.ndarray,
        meshes: dict[str, np.ndarray],
        width: int,
        height: int,
        lamps: np.ndarray | None = None,
        shadow_size: int = 1536,
        shadow_extent: float = 70.0,
    ):
        import moderngl

        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as error:
            raise DreamdriveError(
                f"cannot open a headless OpenGL context through EGL ({error}); install the Debian packages "
                "libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1 (make does this when run as root)."
            ) from error
        ctx = self.ctx
        self.width, self.height = width, height
        self.lamps = np.zeros((0, 3)) if lamps is None else np.asarray(lamps)
        self.program = ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        self.sky = ctx.program(vertex_shader=_SKY_VERTEX, fragment_shader=_SKY_FRAGMENT)
        self.shadow_program = ctx.program(vertex_shader=_SHADOW_VERTEX, fragment_shader=_SHADOW_FRAGMENT)
        self.geometry_program = ctx.program(vertex_shader=_VERTEX, fragment_shader=_GEOMETRY_FRAGMENT)
        self.program["shadow_map"] = 0
        layout = "3f 3f 4f 1f"
        names = ("in_pos", "in_normal", "in_color", "in_semantic")
        self._vaos: dict[str, tuple] = {}
        self._radius: dict[str, float] = {}
        for key, rows in {"__town__": town_rows, **meshes}.items():
            if rows.ndim != 2 or rows.shape[1] != FLOATS_PER_VERTEX or len(rows) == 0:
                raise DreamdriveError(f"mesh {key!r} has no triangles to render.")
        # surfaces at ground level shadow nothing (a curb's is a few centimetres): the sun's pass draws the rest
        ground_level = np.isin(np.round(town_rows[::3, 10]), [SEMANTIC[name] for name in _GROUND_LEVEL])
        caster_rows, self._caster_tiles = _tile(town_rows[~ground_level.repeat(3)], TILE_SIZE)
        town_rows, self._tiles = _tile(town_rows, TILE_SIZE)
        for key, rows in {"__town__": town_rows, **meshes}.items():
            buffer = ctx.buffer(np.ascontiguousarray(rows, dtype=np.float32).tobytes())
            self._radius[key] = float(np.linalg.norm(rows[:, :3], axis=1).max())
            if key == "__town__":
                casters = ctx.buffer(caster_rows.astype(np.float32).tobytes()) if len(caster_rows) else None
            else:
                casters = buffer
            self._vaos[key] = (  # indexed by _LIT, _SHADOW, _GEOMETRY
                ctx.vertex_array(self.program, [(buffer, layout, *names)]),
                ctx.vertex_array(self.shadow_program, [(casters, "3f 32x", "in_pos")]) if casters else None,
                ctx.vertex_array(
                    self.geometry_program, [(buffer, "3f 3f 16x 1f", "in_pos", "in_normal", "in_semantic")]
                ),
            )
        quad = ctx.buffer(np.array([-1, -1, 3, -1, -1, 3], dtype=np.float32).tobytes())
        self._sky_vao = ctx.vertex_array(self.sky, [(quad, "2f", "in_pos")])
        self._fbos: dict[tuple[int, int], object] = {}
        self.shadow_tex = ctx.depth_texture((shadow_size, shadow_size))
        self.shadow_tex.compare_func = "<="
        self.shadow_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.shadow_tex.repeat_x = self.shadow_tex.repeat_y = False
        self.shadow_fbo = ctx.framebuffer(depth_attachment=self.shadow_tex)
        self.shadow_extent = shadow_extent

    def release(self) -> None:
        self.ctx.release()

    def _framebuffer(self, width: int, height: int):
        """The render targets for images of this size (made on first use)."""
        if (width, height) not in self._fbos:
            ctx = self.ctx
            targets = [
                ctx.texture((width, height), 4, dtype="f1"),
                ctx.texture((width, height), 4, dtype="f4"),
                ctx.texture((width, height), 2, dtype="i4"),
            ]
            self._fbos[(width, height)] = ctx.framebuffer(targets, ctx.depth_renderbuffer((width, height)))
        return self._fbos[(width, height)]

    # -- frame -------------------------------------------------------------------------------

    def _draw_all(
        self,
        objects: list[RenderObject],
        kind: int,
        view_proj: np.ndarray,
        tiles: np.ndarray,
        shown: np.ndarray,
        eye: np.ndarray | None = None,
    ) -> None:
        """Draw the shown objects, then the visible town tiles nearest first and the ground last.

        `kind` is the pass: _LIT, _SHADOW or _GEOMETRY. Near-to-far order lets the depth test reject
        hidden fragments before they are shaded. The town's back faces are culled (its surfaces face
        where they are seen from); the sun's pass draws only the town's shadow casters, with `tiles`
        indexing those.
        """
        import moderngl

        shadow = kind == _SHADOW
        program = (self.program, self.shadow_program, self.geometry_program)[kind]
        program["view_proj"].write(_gl(view_proj))
        for obj, show in zip(objects, shown):
            if not show:
                continue
            if obj.mesh_key not in self._vaos:
                raise DreamdriveError(f"no mesh {obj.mesh_key!r} was given to the renderer.")
            program["model"].write(_gl(obj.global_T_object.matrix))
            if not shadow:
                program["instance"] = obj.instance
            if kind == _LIT:
                program["lights_on"] = int(obj.lights and self._lights_on)
            self._vaos[obj.mesh_key][kind].render()
        program["model"].write(_gl(np.eye(4)))
        if not shadow:
            program["instance"] = 0
        if kind == _LIT:
            program["lights_on"] = int(self._lights_on)
        town = self._vaos["__town__"][kind]
        layout = self._caster_tiles if shadow else self._tiles
        if town is None:
            return
        order = np.flatnonzero(tiles)
        if eye is not None:
            order = order[np.argsort(np.linalg.norm(layout.centres[order] - eye, axis=1))]
        # the sun's pass keeps the back faces of the town's closed solids: their far side, which casts
        # the same shadows without the lit faces shadowing themselves
        self.ctx.cull_face = "front" if shadow else "back"
        self.ctx.enable(moderngl.CULL_FACE)
        for first, count in layout.ranges[order]:
            town.render(first=int(first), vertices=int(count))
        first, count = layout.last
        if count:
            town.render(first=int(first), vertices=int(count))
        self.ctx.disable(moderngl.CULL_FACE)

    def prepare(
        self,
        centre: np.ndarray,
        objects: list[RenderObject],
        environment: Environment,
        lights: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = (),
    ) -> None:
        """Set the environment, render the sun's shadow map around `centre` and pick the lights."""
        import moderngl

        uniforms = environment.uniforms()
        self._env = uniforms
        self._lights_on = environment.lights_on
        self._rain = environment.weather == "rain"
        for name in ("sun_dir", "sun_color", "sky_ambient", "ground_ambient", "fog_color"):
            self.program[name].value = tuple(float(v) for v in uniforms[name])
        for name in ("fog_density", "wetness", "night"):
            self.program[name].value = float(uniforms[name])
        # sun shadow map: orthographic, looking along -sun_dir at the ego
        sun = uniforms["sun_dir"] if uniforms["sun_dir"][2] > 0.05 else np.array([0.3, 0.3, 0.9])
        forward = -sun / np.linalg.norm(sun)
        right = np.cross(forward, [0, 0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        eye = np.asarray(centre) - forward * 200.0
        view = np.eye(4)
        view[:3, :3] = np.stack([right, up, -forward])
        view[:3, 3] = -view[:3, :3] @ eye
        e = self.shadow_extent
        ortho = np.diag([1 / e, 1 / e, -2 / 400.0, 1.0])
        ortho[2, 3] = -1.0
        self._light_view_proj = ortho @ view
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.shadow_fbo.use()
        self.shadow_fbo.clear(depth=1.0)
        if uniforms["sun_color"].max() > 0:
            casters = self._caster_tiles
            near = np.linalg.norm(casters.centres[:, :2] - np.asarray(centre)[:2], axis=1) < e * 1.5 + casters.radii
            object_xy = np.array([o.global_T_object.translation[:2] for o in objects]).reshape(-1, 2)
            near_objects = np.linalg.norm(object_xy - np.asarray(centre)[:2], axis=1) < e * 1.5
            self._draw_all(objects, _SHADOW, self._light_view_proj, near, near_objects)
        self.program["light_view_proj"].write(_gl(self._light_view_proj))
        # local lights: the given ones (headlights) first, then the street lamps nearest the centre
        chosen = list(lights)[:MAX_LIGHTS] if self._lights_on else []
        if self._lights_on and len(self.lamps):
            order = np.argsort(np.linalg.norm(self.lamps[:, :2] - np.asarray(centre)[:2], axis=1))
            for i in order[: MAX_LIGHTS - len(chosen)]:
                chosen.append((self.lamps[i], np.array([0.0, 0.0, -1.0]), np.array([1.6, 1.3, 0.9]) * 2.0, -2.0))
        padded = chosen + [(np.zeros(3), np.zeros(3), np.zeros(3), -2.0)] * (MAX_LIGHTS - len(chosen))
        self.program["n_lights"] = len(chosen)
        self.program["light_pos"].write(np.array([p for p, _, _, _ in padded], np.float32).tobytes())
        self.program["light_dir"].write(np.array([d for _, d, _, _ in padded], np.float32).tobytes())
        self.program["light_color"].write(np.array([c for _, _, c, _ in padded], np.float32).tobytes())
        self.program["light_cos"].write(np.array([k for _, _, _, k in padded], np.float32).tobytes())

    def render(
        self, camera: Camera, global_T_cam: Transform, objects: list[RenderObject], geometry_only: bool = False
    ) -> CameraImages:
        """Render one camera after `prepare` (`geometry_only`: depth, normals and ids, no lighting)."""
        import moderngl

        width, height = camera.width, camera.height
        cam_T_global = global_T_cam.inverse()
        view_proj = projection_matrix(camera.intrinsic, width, height) @ EYE_T_CAM @ cam_T_global.matrix
        fbo = self._framebuffer(width, height)
        fbo.use()
        fbo.clear(depth=1.0)
        self.ctx.enable(moderngl.DEPTH_TEST)
        kind = _GEOMETRY if geometry_only else _LIT
        program = self.geometry_program if geometry_only else self.program
        program["cam_pos"].value = tuple(float(v) for v in global_T_cam.translation)
        program["cam_rot"].write(_gl(cam_T_global.rotation))
        self.shadow_tex.use(location=0)
        centres = np.array([o.global_T_object.translation for o in objects]).reshape(-1, 3)
        radii = np.array([self._radius[o.mesh_key] for o in objects])
        shown = _spheres_in_view(camera, cam_T_global, centres, radii)
        tiles = self._tiles.in_view(camera, cam_T_global)
        self._draw_all(objects, kind, view_proj, tiles, shown, global_T_cam.translation)
        if not geometry_only:  # the sky's outputs other than colour are the cleared values
            self._draw_sky(camera, global_T_cam)
        images = self._read(fbo, width, height)
        if self._rain and not geometry_only:
            images.rgb = np.ascontiguousarray(images.rgb)
            _rain_streaks(images.rgb, global_T_cam)
        return images

    def _draw_sky(self, camera: Camera, global_T_cam: Transform) -> None:
        """The sky last, at the far plane: the depth test shades only the pixels nothing covered."""
        ray_to_global = global_T_cam.rotation @ np.linalg.inv(camera.intrinsic)
        env = self._env
        self.sky["ray_to_global"].write(_gl(ray_to_global))
        self.sky["height"] = float(camera.height)
        for name in ("horizon", "zenith", "sun_dir", "sun_color", "fog_color"):
            self.sky[name].value = tuple(float(v) for v in env[name])
        self.sky["fog_mix"] = float(min(1.0, env["fog_density"] * 25))
        self.ctx.depth_func = "<="
        self._sky_vao.render()
        self.ctx.depth_func = "<"

    @staticmethod
    def _read(fbo, w: int, h: int) -> CameraImages:
        """The render targets as arrays, top row first. They are views: copy before writing into them."""
        # RGBA reads are plain copies; RGB would go through a slow conversion
        rgba = np.frombuffer(fbo.read(components=4, attachment=0), np.uint8).reshape(h, w, 4)[::-1]
        geom = np.frombuffer(fbo.read(components=4, attachment=1, dtype="f4"), np.float32).reshape(h, w, 4)[::-1]
        ids = np.frombuffer(fbo.read(components=2, attachment=2, dtype="i4"), np.int32).reshape(h, w, 2)[::-1]
        return CameraImages(
            rgb=rgba[..., :3], depth=geom[..., 3], normal=geom[..., :3], instance=ids[..., 0], semantic=ids[..., 1]
        )


def _rain_streaks(rgb: np.ndarray, global_T_cam: Transform) -> None:
    """Falling rain drawn in place: short, faint, slanted streaks, the same for the same camera pose."""
    import cv2

    seed = int.from_bytes(np.round(global_T_cam.matrix * 1000).astype(np.int64).tobytes()[:64:8], "little")
    rng = np.random.default_rng(seed % 2**63)
    height, width = rgb.shape[:2]
    count = width * height // 900
    start = rng.uniform([0, 0], [width, height], (count, 2))
    length = rng.uniform(0.03, 0.08, count) * height
    end = start + np.stack([length * 0.15, length], axis=1)
    overlay = rgb.copy()
    for a, b in zip(start.astype(int), end.astype(int)):
        cv2.line(overlay, tuple(a), tuple(b), (200, 205, 210), 1, cv2.LINE_AA)
    cv2.addWeighted(overlay, 0.35, rgb, 0.65, 0, dst=rgb)


def render_frame(
    renderer: WorldRenderer,
    rig: CameraRig,
    global_T_ego: Transform,
    objects: list[RenderObject],
    environment: Environment,
    lights: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = (),
    camera_poses: dict[str, Transform] | None = None,
) -> dict[str, CameraImages]:
    """Every camera of the rig at one frame: the frame prepared around the ego (sun shadows, lights), then
    each camera rendered from its pose. The one routine the world builder, scenario rendering and insertion
    share.

    Args:
        global_T_ego: the ego pose of the frame.
        lights: spot lights (headlights) before the street lamps, as `WorldRenderer.prepare` takes them.
        camera_poses: global_T_ego of cameras that fired at another moment than the frame (real nuScenes).
    Returns:
        channel -> the camera's images, in the rig's (ring) order.
    """
    camera_poses = camera_poses or {}
    renderer.prepare(global_T_ego.translation, objects, environment, lights)
    return {
        camera.name: renderer.render(camera, camera_poses.get(camera.name, global_T_ego) @ camera.ego_T_cam, objects)
        for camera in rig
    }


def make_renderer(town, meshes: dict[str, np.ndarray], width: int, height: int, **kwargs) -> WorldRenderer:
    """A renderer for a town with the given object meshes."""
    return WorldRenderer(town_soup(town), meshes, width, height, lamps=lamp_positions(town), **kwargs)


# A 32-beam spinning LiDAR like the nuScenes HDL-32E: elevations from -30.67 to +10.67 degrees.
LIDAR_ELEVATIONS = np.radians(np.linspace(-30.67, 10.67, 32))
LIDAR_AZIMUTH_STEP = np.radians(0.4)
LIDAR_RANGE = 70.0
LIDAR_FACE = 256  # pixels of each of the four 90-degree depth views (0.35 degrees a pixel)
INTENSITY = {1: 12.0, 2: 20.0, 3: 90.0, 4: 90.0, 5: 30.0, 6: 40.0, 7: 15.0, 8: 10.0}


def lidar_faces(global_T_lidar: Transform) -> list[tuple[Camera, Transform]]:
    """Four 90-degree pinhole views (front, left, back, right of the LiDAR) covering every beam."""
    focal = LIDAR_FACE / 2  # 90 degrees across
    intrinsic = np.array([[focal, 0, LIDAR_FACE / 2], [0, focal, LIDAR_FACE / 2], [0, 0, 1.0]])
    faces = []
    for k in range(4):
        lidar_T_cam = Transform(level_camera_rotation(k * np.pi / 2), np.zeros(3))
        faces.append(
            (Camera(f"LIDAR_FACE_{k}", intrinsic, lidar_T_cam, LIDAR_FACE, LIDAR_FACE), global_T_lidar @ lidar_T_cam)
        )
    return faces


def lidar_rays() -> tuple[np.ndarray, np.ndarray]:
    """Unit ray directions (N, 3) in a LiDAR frame whose x axis is the first face's optical axis, and beam index."""
    azimuths = np.arange(0.0, 2 * np.pi, LIDAR_AZIMUTH_STEP)
    el, az = np.meshgrid(LIDAR_ELEVATIONS, azimuths, indexing="ij")
    rays = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1).reshape(-1, 3)
    rings = np.repeat(np.arange(len(LIDAR_ELEVATIONS)), len(azimuths))
    return rays, rings


def scan_lidar(
    renderer: WorldRenderer, global_T_lidar: Transform, objects: list[RenderObject]
) -> tuple[np.ndarray, np.ndarray]:
    """A LiDAR sweep: points (N, 5) x, y, z, intensity, ring in the LiDAR frame, and the instance each hit."""
    rays, rings = lidar_rays()
    points, instances = [], []
    for k, (camera, global_T_cam) in enumerate(lidar_faces(global_T_lidar)):
        images = renderer.render(camera, global_T_cam, objects, geometry_only=True)
        azimuth = np.arctan2(rays[:, 1], rays[:, 0])
        in_face = np.abs((azimuth - k * np.pi / 2 + np.pi) % (2 * np.pi) - np.pi) <= np.pi / 4
        rays_cam = camera.cam_T_ego.apply_vectors(rays[in_face])  # the face's ego frame is the LiDAR frame
        u = camera.intrinsic[0, 0] * rays_cam[:, 0] / rays_cam[:, 2] + camera.intrinsic[0, 2]
        v = camera.intrinsic[1, 1] * rays_cam[:, 1] / rays_cam[:, 2] + camera.intrinsic[1, 2]
        col = np.clip(u.astype(int), 0, camera.width - 1)
        row = np.clip(v.astype(int), 0, camera.height - 1)
        depth = images.depth[row, col]
        distance = depth / rays_cam[:, 2]  # along the ray to the surface seen in that pixel
        hit = (depth > 0) & (distance < LIDAR_RANGE)
        xyz = rays[in_face][hit] * distance[hit, None]
        semantic = images.semantic[row, col][hit]
        intensity = np.array([INTENSITY.get(int(c), 60.0) for c in semantic], dtype=np.float32)
        points.append(np.column_stack([xyz, intensity, rings[in_face][hit]]).astype(np.float32))
        instances.append(images.instance[row, col][hit])
    return np.concatenate(points), np.concatenate(instances)
