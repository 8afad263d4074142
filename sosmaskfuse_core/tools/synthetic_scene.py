"""A deterministic moving street scene: thermal counts, visible RGB, ground-truth object mask.

`SyntheticScene(width, height, seed=...)` precomputes a static background (sky, buildings,
trees, sidewalks, a sun-warmed road with lane markings) and places people walking along the
sidewalks and cars driving along two lanes. `render(t)` draws the moving objects at time
`t` seconds and returns

* `thermal`: uint16 raw counts (a microbolometer's 14-bit-ish range: background about
  6900-8000, the sun-warmed road 8300-8700, people and cars 1500-3000 counts above their
  surroundings), blurred a little and noisy, at `thermal_size` when given;
* `visible`: uint8 H x W x 3 **RGB** (as a ``rgb8`` camera), mildly noisy;
* `mask`: uint8 H x W, 255 on people and cars, 0 elsewhere (visible pixel grid).

Both cameras see the same field of view (`camera_matrix` gives a pinhole K for each). The
same seed and `t` always give the same images; the noise pattern changes every millisecond
of `t`. Pure NumPy/OpenCV, a few milliseconds per frame at the default 320 x 256.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import cv2
import numpy as np

HFOV_DEG = 60.0  # horizontal field of view of both synthetic cameras
_SHIFT = 4  # sub-pixel bits for OpenCV drawing: smooth motion at low resolution
_ONE = 1 << _SHIFT

# layout, as fractions of the height
_SKY_END = 0.56  # buildings stand on the far sidewalk
_FAR_WALK = (0.56, 0.63)
_ROAD = (0.63, 0.93)
_CENTRE_LINE = 0.78
_EDGE_LINES = (0.645, 0.915)

_SHIRTS = (
    (200, 40, 40),
    (40, 80, 190),
    (230, 200, 40),
    (40, 150, 70),
    (235, 235, 230),
    (240, 120, 30),
)
_TROUSERS = ((30, 40, 80), (25, 25, 28), (100, 100, 105), (150, 130, 90))
_SKIN = ((235, 195, 165), (200, 150, 110), (140, 95, 65), (95, 65, 45))
_CAR_PAINT = (
    (190, 30, 35),
    (235, 235, 235),
    (25, 25, 30),
    (170, 172, 178),
    (30, 70, 160),
    (240, 195, 20),
)
_FACADES = ((200, 180, 150), (160, 80, 60), (150, 150, 155), (225, 215, 190), (110, 125, 140))


class SceneFrame(NamedTuple):
    thermal: np.ndarray  # uint16 counts, thermal_size (default: H x W)
    visible: np.ndarray  # uint8 H x W x 3, RGB
    mask: np.ndarray  # uint8 H x W, 255 = person or car


@dataclass(frozen=True)
class _Walker:
    x0: float  # position along the track at t=0, pixels
    speed: float  # pixels per second, signed
    feet_y: float
    height: float
    phase: float
    shirt: tuple
    trousers: tuple
    skin: tuple
    heat: float  # counts above the surroundings for skin; clothes are a little cooler


@dataclass(frozen=True)
class _Car:
    x0: float
    speed: float
    ground_y: float
    length: float
    paint: tuple
    body_heat: float
    engine_heat: float


class _Painter:
    """Draws one shape into the visible, thermal and mask layers at once (pixel coordinates)."""

    def __init__(self, visible: np.ndarray, thermal: np.ndarray, mask: np.ndarray) -> None:
        self.visible, self.thermal, self.mask = visible, thermal, mask

    @staticmethod
    def _fixed(points: Sequence[Sequence[float]]) -> np.ndarray:
        return np.round(np.asarray(points, np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)

    def poly(self, points, rgb, counts: float) -> None:
        pts = [self._fixed(points)]
        cv2.fillPoly(self.visible, pts, rgb, cv2.LINE_AA, _SHIFT)
        cv2.fillPoly(self.thermal, pts, float(counts), cv2.LINE_8, _SHIFT)
        cv2.fillPoly(self.mask, pts, 255, cv2.LINE_8, _SHIFT)

    def circle(self, centre, radius: float, rgb, counts: float) -> None:
        c = tuple(int(round(v * _ONE)) for v in centre)
        r = max(1, int(round(radius * _ONE)))
        cv2.circle(self.visible, c, r, rgb, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(self.thermal, c, r, float(counts), -1, cv2.LINE_8, _SHIFT)
        cv2.circle(self.mask, c, r, 255, -1, cv2.LINE_8, _SHIFT)

    def line(self, p0, p1, thickness: float, rgb, counts: float) -> None:
        a = tuple(int(round(v * _ONE)) for v in p0)
        b = tuple(int(round(v * _ONE)) for v in p1)
        t = max(1, int(round(thickness)))
        cv2.line(self.visible, a, b, rgb, t, cv2.LINE_AA, _SHIFT)
        cv2.line(self.thermal, a, b, float(counts), t, cv2.LINE_8, _SHIFT)
        cv2.line(self.mask, a, b, 255, t, cv2.LINE_8, _SHIFT)


class SyntheticScene:
    """A street with walking people and driving cars; `render(t)` gives a frame of each camera."""

    def __init__(
        self,
        width: int = 320,
        height: int = 256,
        *,
        seed: int = 0,
        thermal_size: tuple[int, int] | None = None,
        people: int = 5,
        cars: int = 4,
    ) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"scene size {width}x{height}: need at least 16x16")
        if thermal_size is not None and (thermal_size[0] < 1 or thermal_size[1] < 1):
            raise ValueError(f"thermal_size {thermal_size}: need positive width and height")
        self.width, self.height, self.seed = int(width), int(height), int(seed)
        self.thermal_size = (
            (self.width, self.height)
            if thermal_size is None
            else (int(thermal_size[0]), int(thermal_size[1]))
        )
        rng = np.random.default_rng(self.seed)
        self._thermal_bg, self._visible_bg = self._background(rng)
        self._actors = self._place_actors(rng, people, cars)  # far to near: drawing order
        pad = 32  # per-frame noise = a randomly shifted window of one static noise tile (fast)
        self._pad = pad
        self._thermal_noise = (rng.standard_normal((height + pad, width + pad)) * 15.0).astype(
            np.float32
        )
        self._visible_noise = np.clip(
            rng.standard_normal((height + pad, width + pad, 3)) * 2.5, -127, 127
        ).astype(np.int16)

    # --- static background ------------------------------------------------------------------

    def _background(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        w, h = self.width, self.height
        y = np.arange(h, dtype=np.float32)[:, None] / h
        vis = np.zeros((h, w, 3), np.float32)
        th = np.zeros((h, w), np.float32)

        def band(lo: float, hi: float) -> slice:
            return slice(int(round(lo * h)), int(round(hi * h)))

        # sky: deep blue at the top to pale at the horizon; cold in the thermal image
        s = band(0.0, _SKY_END)
        f = y[s] / _SKY_END
        vis[s] = (1 - f)[..., None] * np.array([70, 130, 200], np.float32) + f[
            ..., None
        ] * np.array([185, 210, 235], np.float32)
        th[s] = 6900.0 + 350.0 * f
        clouds: np.ndarray = np.zeros((h, w), np.float32)
        for _ in range(3):
            cx, cy = rng.uniform(0, w), rng.uniform(0.05, 0.25) * h
            cv2.ellipse(
                clouds,
                (int(cx), int(cy)),
                (int(rng.uniform(0.08, 0.16) * w), int(0.035 * h + 2)),
                0,
                0,
                360,
                1.0,
                -1,
            )
        clouds = cv2.GaussianBlur(clouds, (0, 0), 0.02 * w + 1)
        vis[s] += clouds[s, :, None] * (np.array([250, 250, 250], np.float32) - vis[s]) * 0.8
        th[s] += 120.0 * clouds[s]

        # far sidewalk, road, near sidewalk; the road is sun-warmed (the hottest background)
        s = band(*_FAR_WALK)
        vis[s], th[s] = (175, 170, 160), 7900.0
        s = band(_ROAD[1], 1.0)
        vis[s], th[s] = (180, 175, 165), 8000.0
        s = band(*_ROAD)
        f = (y[s] - _ROAD[0]) / (_ROAD[1] - _ROAD[0])
        vis[s] = (78, 78, 82)
        th[s] = 8350.0 + 300.0 * f
        texture = rng.standard_normal((h, w)).astype(np.float32)
        vis[s] += 6.0 * texture[s, :, None]
        th[s] += 30.0 * texture[s]
        for x in np.arange(0.0, w, 0.06 * w):  # paving joints
            for lo, hi in (_FAR_WALK, (_ROAD[1], 1.0)):
                xs = int(x)
                vis[band(lo, hi), xs : xs + 1] = (140, 135, 128)

        # buildings and trees standing on the far sidewalk
        base = int(round(_SKY_END * h))
        x = rng.uniform(-0.05, 0.0) * w
        while x < w:
            bw = rng.uniform(0.07, 0.16) * w
            x0, x1 = int(x), int(x + bw)
            if rng.random() < 0.3:
                self._tree(vis, th, rng, (x0 + x1) / 2, base, bw)
            else:
                top = int(rng.uniform(0.16, 0.40) * h)
                vis[top:base, max(x0, 0) : x1] = _FACADES[rng.integers(len(_FACADES))]
                wall = rng.uniform(7450, 7700)
                th[top:base, max(x0, 0) : x1] = wall
                dx, dy = max(3, int(0.035 * w)), max(3, int(0.05 * h))
                for wy in range(top + dy // 2, base - dy, dy):
                    for wx in range(x0 + dx // 3, x1 - dx // 2, dx):
                        lit = rng.random() < 0.2
                        sl = (
                            slice(wy, wy + int(dy * 0.55)),
                            slice(max(wx, 0), max(wx + int(dx * 0.55), 0)),
                        )
                        vis[sl] = (230, 210, 140) if lit else (50, 60, 75)
                        th[sl] = wall + (180 if lit else 110)
            x += bw + rng.uniform(0, 0.03) * w

        # lane markings (cooler than the asphalt in the thermal image: white paint reflects
        # the sun)
        thick = max(1, int(round(0.008 * h)))
        for ly in _EDGE_LINES:
            yy = int(round(ly * h))
            vis[yy : yy + thick] = (225, 225, 220)
            th[yy : yy + thick] -= 250.0
        yy = int(round(_CENTRE_LINE * h))
        for dash in np.arange(0.0, w, 0.11 * w):
            sl = (slice(yy, yy + thick), slice(int(dash), int(dash + 0.06 * w)))
            vis[sl] = (230, 220, 120)
            th[sl] -= 250.0

        # thermal: fixed-pattern column offsets of a microbolometer, and its softer optics
        th += (rng.standard_normal(w) * 8.0).astype(np.float32)[None, :]
        return th, np.clip(vis, 0, 255).astype(np.uint8)

    @staticmethod
    def _tree(
        vis: np.ndarray, th: np.ndarray, rng: np.random.Generator, cx: float, base: int, bw: float
    ) -> None:
        h = vis.shape[0]
        trunk_w, crown = max(2, int(0.12 * bw)), 0.09 * h + 0.2 * bw
        top = int(base - 0.12 * h)
        vis[top:base, int(cx - trunk_w / 2) : int(cx + trunk_w / 2)] = (90, 65, 40)
        th[top:base, int(cx - trunk_w / 2) : int(cx + trunk_w / 2)] = 7450.0
        for _ in range(5):
            c = (int(cx + rng.uniform(-0.3, 0.3) * bw), int(top - rng.uniform(0.2, 0.9) * crown))
            r = int(rng.uniform(0.35, 0.55) * crown)
            green = (
                int(rng.uniform(40, 80)),
                int(rng.uniform(110, 150)),
                int(rng.uniform(40, 70)),
            )
            cv2.circle(vis, c, r, green, -1, cv2.LINE_AA)
            cv2.circle(th, c, r, 7300.0, -1)

    def _place_actors(self, rng: np.random.Generator, people: int, cars: int) -> list:
        w, h = self.width, self.height
        walkers = []
        for i in range(people):
            far = i % 2 == 0
            walkers.append(
                _Walker(
                    x0=rng.uniform(0, 1.1 * w),
                    speed=float(rng.choice((-1, 1)) * rng.uniform(0.05, 0.09) * w),
                    feet_y=(0.615 if far else 0.985) * h,
                    height=(0.15 if far else 0.21) * h * rng.uniform(0.9, 1.1),
                    phase=rng.uniform(0, 2 * math.pi),
                    shirt=_SHIRTS[rng.integers(len(_SHIRTS))],
                    trousers=_TROUSERS[rng.integers(len(_TROUSERS))],
                    skin=_SKIN[rng.integers(len(_SKIN))],
                    heat=rng.uniform(2300, 3000),
                )
            )
        vehicles = []
        lanes = (
            (0.765, -0.16, 0.21),
            (0.905, 0.22, 0.26),
        )  # ground y, speed (widths/s), length (widths)
        for i in range(cars):
            ground, speed, length = lanes[i % 2]
            k, n = i // 2, (cars + 1 - i % 2) // 2
            vehicles.append(
                _Car(
                    x0=(k + rng.uniform(0, 0.3)) * 1.4 * w / n,
                    speed=speed * w,
                    ground_y=ground * h,
                    length=length * w * rng.uniform(0.9, 1.05),
                    paint=_CAR_PAINT[rng.integers(len(_CAR_PAINT))],
                    body_heat=rng.uniform(1500, 1800),
                    engine_heat=rng.uniform(2500, 3000),
                )
            )
        # far to near, so nearer objects are drawn over farther ones
        order = sorted(
            [(a.feet_y, a) for a in walkers] + [(c.ground_y, c) for c in vehicles],
            key=lambda p: p[0],
        )
        return [a for _, a in order]

    # --- moving objects ---------------------------------------------------------------------

    def _track_x(self, x0: float, speed: float, t: float, margin: float) -> float:
        span = self.width + 2 * margin
        return (x0 + speed * t) % span - margin

    def _draw_walker(self, p: _Painter, a: _Walker, t: float) -> None:
        h = a.height
        x = self._track_x(a.x0, a.speed, t, 0.1 * self.width)
        ground = float(
            self._thermal_bg[
                min(int(a.feet_y), self.height - 1), int(np.clip(x, 0, self.width - 1))
            ]
        )
        body = ground + a.heat * 0.75  # clothes insulate: cooler than skin
        swing = 0.45 * math.sin(a.phase + 2 * math.pi * 1.8 * t)
        hip, shoulder = (x, a.feet_y - 0.47 * h), (x, a.feet_y - 0.78 * h)
        for sgn in (1, -1):
            foot = (
                x + sgn * math.sin(swing) * 0.45 * h,
                a.feet_y - (1 - math.cos(swing)) * 0.45 * h,
            )
            p.line(hip, foot, 0.09 * h, a.trousers, body - 200)
            hand = (x - sgn * math.sin(swing) * 0.33 * h, shoulder[1] + math.cos(swing) * 0.33 * h)
            p.line(shoulder, hand, 0.06 * h, a.shirt, body)
        p.poly(
            [
                (x - 0.11 * h, a.feet_y - 0.82 * h),
                (x + 0.11 * h, a.feet_y - 0.82 * h),
                (x + 0.10 * h, a.feet_y - 0.45 * h),
                (x - 0.10 * h, a.feet_y - 0.45 * h),
            ],
            a.shirt,
            body,
        )
        p.circle((x, a.feet_y - 0.9 * h), 0.08 * h, a.skin, ground + a.heat)

    def _draw_car(self, p: _Painter, c: _Car, t: float) -> None:
        L = c.length
        ch = 0.42 * L  # height
        d = 1.0 if c.speed > 0 else -1.0
        x = self._track_x(c.x0, c.speed, t, 0.7 * L)
        g = c.ground_y
        ground = float(
            self._thermal_bg[min(int(g), self.height - 1), int(np.clip(x, 0, self.width - 1))]
        )

        def pt(
            u: float, v: float
        ) -> tuple[float, float]:  # u along travel (front > 0), v up, in lengths
            return x + d * u * L, g - v * L

        body = ground + c.body_heat
        p.poly([pt(-0.5, 0.08), pt(0.5, 0.08), pt(0.5, 0.24), pt(-0.5, 0.26)], c.paint, body)
        p.poly(
            [pt(0.12, 0.08), pt(0.5, 0.08), pt(0.5, 0.24), pt(0.12, 0.245)],
            c.paint,
            ground + c.engine_heat,
        )
        p.poly(
            [pt(-0.36, 0.25), pt(0.22, 0.24), pt(0.08, ch / L), pt(-0.28, ch / L)], c.paint, body
        )
        glass = (45, 55, 70)
        p.poly(
            [
                pt(-0.31, 0.26),
                pt(-0.07, 0.26),
                pt(-0.07, ch / L - 0.025),
                pt(-0.25, ch / L - 0.025),
            ],
            glass,
            body - 900,
        )
        p.poly(
            [pt(-0.03, 0.26), pt(0.17, 0.25), pt(0.06, ch / L - 0.025), pt(-0.03, ch / L - 0.025)],
            glass,
            body - 900,
        )
        p.poly(
            [pt(0.47, 0.17), pt(0.5, 0.17), pt(0.5, 0.22), pt(0.47, 0.22)],
            (250, 245, 200),
            ground + c.engine_heat,
        )
        p.poly(
            [pt(-0.5, 0.17), pt(-0.47, 0.17), pt(-0.47, 0.22), pt(-0.5, 0.22)], (200, 20, 20), body
        )
        for u in (-0.3, 0.3):
            p.circle(pt(u, 0.08), 0.085 * L, (20, 20, 22), ground + 0.8 * c.engine_heat)
            p.circle(pt(u, 0.08), 0.035 * L, (150, 150, 155), ground + c.engine_heat)

    # --- public -----------------------------------------------------------------------------

    def render(self, t: float) -> SceneFrame:
        """The scene at `t` seconds: thermal counts, visible RGB and the object mask."""
        visible = self._visible_bg.copy()
        thermal = self._thermal_bg.copy()
        mask = np.zeros((self.height, self.width), np.uint8)
        painter = _Painter(visible, thermal, mask)
        for actor in self._actors:
            if isinstance(actor, _Walker):
                self._draw_walker(painter, actor, t)
            else:
                self._draw_car(painter, actor, t)

        noise = np.random.default_rng((self.seed, int(round(t * 1000)) % (1 << 32)))
        dy, dx = (int(v) for v in noise.integers(0, self._pad + 1, 2))
        dy2, dx2 = (int(v) for v in noise.integers(0, self._pad + 1, 2))
        h, w = self.height, self.width
        thermal = cv2.GaussianBlur(thermal, (0, 0), 0.8)
        thermal += self._thermal_noise[dy : dy + h, dx : dx + w]
        if self.thermal_size != (w, h):
            shrink = self.thermal_size[0] < w
            thermal = cv2.resize(
                thermal,
                self.thermal_size,
                interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
            )
        thermal = np.clip(thermal, 0, 65535, out=thermal).round().astype(np.uint16)
        vis16 = visible.astype(np.int16)
        vis16 += self._visible_noise[dy2 : dy2 + h, dx2 : dx2 + w]
        visible = np.clip(vis16, 0, 255, out=vis16).astype(np.uint8)
        return SceneFrame(thermal, visible, mask)

    def camera_matrix(self, camera: str) -> np.ndarray:
        """3x3 pinhole K of camera `visible` or `thermal` (same field of view, HFOV_DEG wide)."""
        if camera not in ("visible", "thermal"):
            raise ValueError(f"camera {camera!r}: expected 'visible' or 'thermal'")
        w, h = (self.width, self.height) if camera == "visible" else self.thermal_size
        f = (self.width / 2) / math.tan(math.radians(HFOV_DEG) / 2)
        sx, sy = w / self.width, h / self.height
        return np.array([[f * sx, 0.0, w / 2], [0.0, f * sy, h / 2], [0.0, 0.0, 1.0]])
