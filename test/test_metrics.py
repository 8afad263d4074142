"""Tests of sosmaskfuse_core.metrics: hand-computed cases, properties, and slow loop references."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from sosmaskfuse_core.evaluation import metrics as M

# ---------------------------------------------------------------------------------------------
# slow, obviously-correct references (pixel loops over plain Python numbers; also used by
# benchmarks/bench_metrics.py)


def slow_en(f: np.ndarray) -> float:
    counts = Counter(min(255, max(0, int(np.round(v)))) for v in f.ravel())
    n = f.size
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def slow_sd(f: np.ndarray) -> float:
    values = [float(v) for v in f.ravel()]
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def slow_sf(f: np.ndarray) -> float:
    h, w = f.shape
    rf = [(f[i, j + 1] - f[i, j]) ** 2 for i in range(h) for j in range(w - 1)]
    cf = [(f[i + 1, j] - f[i, j]) ** 2 for i in range(h - 1) for j in range(w)]
    return math.sqrt(sum(rf) / len(rf) + sum(cf) / len(cf))


def slow_ag(f: np.ndarray) -> float:
    h, w = f.shape
    total = 0.0
    for i in range(h):
        for j in range(w):
            if j == 0:
                gx = f[i, 1] - f[i, 0]
            elif j == w - 1:
                gx = f[i, j] - f[i, j - 1]
            else:
                gx = (f[i, j + 1] - f[i, j - 1]) / 2
            if i == 0:
                gy = f[1, j] - f[0, j]
            elif i == h - 1:
                gy = f[i, j] - f[i - 1, j]
            else:
                gy = (f[i + 1, j] - f[i - 1, j]) / 2
            total += math.sqrt((gx * gx + gy * gy) / 2)
    return total / (h * w)


def slow_mutual_information(x: np.ndarray, y: np.ndarray) -> float:
    levels = lambda v: min(255, max(0, int(np.round(v))))  # noqa: E731
    pairs = Counter((levels(u), levels(v)) for u, v in zip(x.ravel(), y.ravel()))
    px, py = Counter(), Counter()
    for (u, v), c in pairs.items():
        px[u] += c
        py[v] += c
    n = x.size
    return sum(
        c / n * math.log((c / n) / ((px[u] / n) * (py[v] / n))) for (u, v), c in pairs.items()
    )


def slow_pearson(x: np.ndarray, y: np.ndarray) -> float:
    xs, ys = [float(v) for v in x.ravel()], [float(v) for v in y.ravel()]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((a - mx) * (b - my) for a, b in zip(xs, ys))
    sxx = sum((a - mx) ** 2 for a in xs)
    syy = sum((b - my) ** 2 for b in ys)
    return sxy / math.sqrt(sxx * syy)


def slow_window(size: int) -> np.ndarray:
    """MATLAB fspecial('gaussian', size, size / 5), entry by entry."""
    sd, r = size / 5, (size - 1) / 2
    h = np.array(
        [
            [math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2 * sd * sd)) for j in range(size)]
            for i in range(size)
        ]
    )
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def slow_filter_valid(img: np.ndarray, win: np.ndarray) -> np.ndarray:
    n = win.shape[0]
    h, w = img.shape[0] - n + 1, img.shape[1] - n + 1
    return np.array(
        [[np.sum(win * img[i : i + n, j : j + n]) for j in range(w)] for i in range(h)]
    )


def slow_vifp(ref: np.ndarray, dist: np.ndarray) -> float:
    eps, sigma_n_sq = 1e-10, 2.0
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (5 - scale) + 1
        win = slow_window(n)
        if scale > 1:
            ref = slow_filter_valid(ref, win)[::2, ::2]
            dist = slow_filter_valid(dist, win)[::2, ::2]
        mu1, mu2 = slow_filter_valid(ref, win), slow_filter_valid(dist, win)
        e11 = slow_filter_valid(ref * ref, win)
        e22 = slow_filter_valid(dist * dist, win)
        e12 = slow_filter_valid(ref * dist, win)
        for i in range(mu1.shape[0]):
            for j in range(mu1.shape[1]):
                s1 = max(e11[i, j] - mu1[i, j] ** 2, 0.0)
                s2 = max(e22[i, j] - mu2[i, j] ** 2, 0.0)
                s12 = e12[i, j] - mu1[i, j] * mu2[i, j]
                g = s12 / (s1 + eps)
                sv = s2 - g * s12
                if s1 < eps:
                    g, sv, s1 = 0.0, s2, 0.0
                if s2 < eps:
                    g, sv = 0.0, 0.0
                if g < 0:
                    sv, g = s2, 0.0
                if sv <= eps:
                    sv = eps
                num += math.log10(1 + g * g * s1 / (sv + sigma_n_sq))
                den += math.log10(1 + s1 / sigma_n_sq)
    return num / den if den else 1.0


def slow_sobel(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB conv2(img, h, 'same') with h3 (x) and h1 (y), then strength and orientation."""
    h1 = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]
    h3 = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    rows, cols = img.shape
    g = np.zeros(img.shape)
    a = np.zeros(img.shape)
    for i in range(rows):
        for j in range(cols):
            sx = sy = 0.0
            for k in range(3):
                for m in range(3):
                    ii, jj = i + 1 - k, j + 1 - m  # convolution: the kernel is flipped
                    if 0 <= ii < rows and 0 <= jj < cols:
                        sx += h3[k][m] * img[ii, jj]
                        sy += h1[k][m] * img[ii, jj]
            g[i, j] = math.sqrt(sx * sx + sy * sy)
            a[i, j] = math.pi / 2 if sx == 0 else math.atan(sy / sx)
    return g, a


def slow_qabf(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ga, aa = slow_sobel(a)
    gb, ab = slow_sobel(b)
    gf, af = slow_sobel(f)

    def q(gs: float, as_: float, gf_: float, af_: float) -> float:
        if gs > gf_:
            rel = gf_ / gs
        elif gs == gf_:
            rel = gf_
        else:
            rel = gs / gf_
        ori = 1 - abs(as_ - af_) / (math.pi / 2)
        q_g = 0.9994 / (1 + math.exp(-15 * (rel - 0.5)))
        q_a = 0.9879 / (1 + math.exp(-22 * (ori - 0.8)))
        return q_g * q_a

    num = den = 0.0
    for i in range(f.shape[0]):
        for j in range(f.shape[1]):
            num += q(ga[i, j], aa[i, j], gf[i, j], af[i, j]) * ga[i, j]
            num += q(gb[i, j], ab[i, j], gf[i, j], af[i, j]) * gb[i, j]
            den += ga[i, j] + gb[i, j]
    return num / den


SLOW = {
    "EN": lambda f, a, b: slow_en(f),
    "SD": lambda f, a, b: slow_sd(f),
    "SF": lambda f, a, b: slow_sf(f),
    "AG": lambda f, a, b: slow_ag(f),
    "MI": lambda f, a, b: slow_mutual_information(f, a) + slow_mutual_information(f, b),
    "SCD": lambda f, a, b: slow_pearson(a, f - b) + slow_pearson(b, f - a),
    "VIF": lambda f, a, b: slow_vifp(a, f) + slow_vifp(b, f),
    "Qabf": slow_qabf,
    "CC": lambda f, a, b: (slow_pearson(f, a) + slow_pearson(f, b)) / 2,
    "PSNR": lambda f, a, b: (
        10 * math.log10(255**2 / ((np.mean((f - a) ** 2) + np.mean((f - b) ** 2)) / 2))
    ),
}


def random_triple(seed: int, shape: tuple[int, int] = (44, 47)) -> tuple[np.ndarray, ...]:
    """Textured IR / visible / fused images: a flat block, a saturated block, an inverted patch."""
    rng = np.random.default_rng(seed)
    h, w = shape
    smooth = np.cumsum(np.cumsum(rng.normal(0, 4, shape), axis=0), axis=1) / 6
    a = np.clip(120 + smooth + rng.normal(0, 12, shape), 0, 255).round()
    b = np.clip(rng.integers(0, 256, shape) * 0.6 + 50 + smooth / 2, 0, 255).round()
    a[:20, :20] = 37  # flat in IR
    b[h // 2 :, w // 2 :] = 255  # saturated in visible
    f = np.clip(0.55 * a + 0.45 * b + rng.normal(0, 6, shape), 0, 255).round()
    f[14:22, 20:] = 255 - a[14:22, 20:]  # anti-correlated band (negative gains)
    f[-20:, :20] = 90  # flat in fused
    return f, a, b


# ---------------------------------------------------------------------------------------------
# agreement with the slow references


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(SLOW))
def test_matches_slow_reference(name: str, seed: int) -> None:
    f, a, b = random_triple(seed)
    fast = M.compute_all(f, a, b)[name]
    assert fast == pytest.approx(SLOW[name](f, a, b), rel=1e-9, abs=1e-12)


def test_random_triple_exercises_every_vif_branch() -> None:
    """At scale 1 the test triple has flat references, flat fused patches and negative gains."""
    f, a, _ = random_triple(0)
    taps = M._separable_factor(M.gaussian_window(17))
    mu_a, mu_f = M._filter_valid(a, taps), M._filter_valid(f, taps)
    s_a = M._filter_valid(a * a, taps) - mu_a**2
    s_f = M._filter_valid(f * f, taps) - mu_f**2
    s_af = M._filter_valid(a * f, taps) - mu_a * mu_f
    assert (s_a < M.VIF_EPS).any() and (s_a > 1).any()
    assert ((s_f < M.VIF_EPS) & (s_a > 1)).any()
    assert ((s_af < 0) & (s_a > 1) & (s_f > 1)).any()


def test_vif_on_float_images_matches_slow_reference() -> None:
    rng = np.random.default_rng(5)
    a = rng.uniform(0, 255, (41, 43))
    f = 0.8 * a + rng.normal(0, 20, a.shape)
    assert M.vifp(a, f) == pytest.approx(slow_vifp(a, f), rel=1e-9)


def test_qabf_on_float_images_matches_slow_reference() -> None:
    rng = np.random.default_rng(6)
    f, a, b = (rng.uniform(0, 3, (12, 13)) for _ in range(3))
    f[:, 4] = a[:, 4]  # ties of non-zero strengths
    assert M.qabf(f, a, b) == pytest.approx(slow_qabf(f, a, b), rel=1e-12)


def test_gaussian_window_is_matlab_fspecial_and_separable() -> None:
    for size in M.VIF_WINDOW_SIZES:
        window = M.gaussian_window(size)
        np.testing.assert_allclose(window, slow_window(size), rtol=1e-14)
        assert window.sum() == pytest.approx(1.0)
        taps = M._separable_factor(window)
        np.testing.assert_allclose(np.outer(taps, taps), window, rtol=1e-13)
    # N = 3, sd = 0.6: the corner tap relative to the centre is exp(-1 / 0.36)
    w3 = M.gaussian_window(3)
    assert w3[0, 0] / w3[1, 1] == pytest.approx(math.exp(-2 / (2 * 0.36)))


# ---------------------------------------------------------------------------------------------
# hand-computed cases


def test_en_known_histograms() -> None:
    assert M.en(np.full((8, 8), 77.0)) == 0.0
    half = np.zeros((4, 4))
    half[:, 2:] = 255
    assert M.en(half) == pytest.approx(1.0)
    four = np.array([[0, 1], [2, 3]] * 3, dtype=float)
    assert M.en(four) == pytest.approx(2.0)


def test_en_rounds_half_to_even_and_clips() -> None:
    # round: 0.4 -> 0, 0.6 -> 1, 1.4 -> 1, 2.5 -> 2 (half to even), so p = (1/4, 1/2, 1/4)
    assert M.en(np.array([[0.4, 0.6], [1.4, 2.5]])) == pytest.approx(1.5)
    # -3 and 300 clip to the end levels 0 and 255: two equally frequent levels
    assert M.en(np.array([[-3.0, 0.0], [255.0, 300.0]])) == pytest.approx(1.0)


def test_sd_is_population() -> None:
    assert M.sd(np.array([[0.0, 2.0]])) == pytest.approx(1.0)
    assert M.sd(np.full((5, 5), 9.0)) == 0.0


def step_image(height: int, width: int, column: int, high: float = 10.0) -> np.ndarray:
    """0 left of ``column``, ``high`` from ``column`` on."""
    image = np.zeros((height, width))
    image[:, column:] = high
    return image


@pytest.mark.parametrize("column", [1, 3, 6])
def test_sf_of_a_step_at_any_column(column: int) -> None:
    # one jump of 10 per row: RF^2 = 100 / (W - 1), no vertical differences
    assert M.sf(step_image(5, 8, column)) == pytest.approx(10 / math.sqrt(7))


@pytest.mark.parametrize("column", [2, 4, 6])
def test_ag_of_an_interior_step(column: int) -> None:
    # central differences give Gx = 5 on the two columns beside the jump: 2 * 5 / sqrt(2) per row
    assert M.ag(step_image(5, 8, column)) == pytest.approx(2 * 5 / math.sqrt(2) / 8)


def test_ag_uses_one_sided_differences_on_the_border() -> None:
    # jump between columns 0 and 1: Gx = 10 (one-sided) at column 0, 5 (central) at column 1
    assert M.ag(step_image(5, 8, 1)) == pytest.approx((10 + 5) / math.sqrt(2) / 8)
    assert M.ag(step_image(5, 8, 7)) == pytest.approx((5 + 10) / math.sqrt(2) / 8)


def test_mi_of_identical_images_is_their_entropy_in_nats() -> None:
    two_levels = np.tile([0.0, 200.0], (6, 3))
    assert M.mutual_information(two_levels, two_levels) == pytest.approx(math.log(2))
    four = np.array([[0, 1], [2, 3]] * 3, dtype=float)
    assert M.mi(four, four, four) == pytest.approx(2 * math.log(4))


def test_mi_of_independent_images_is_zero() -> None:
    rows = np.repeat([[0.0], [255.0]], 4, axis=1)  # depends on the row only
    rows = np.tile(rows, (2, 2))  # 4 x 8
    cols = np.tile([10.0, 20.0], (4, 4))  # depends on the column only
    assert M.mutual_information(rows, cols) == pytest.approx(0.0, abs=1e-15)
    assert M.mutual_information(rows, np.full_like(rows, 3.0)) == 0.0


def test_mi_uses_one_bin_per_gray_level() -> None:
    # 100 and 101 are separate levels: a 2-level image is fully determined by the other one
    x = np.tile([100.0, 101.0], (4, 4))
    y = np.tile([7.0, 250.0], (4, 4))
    assert M.mutual_information(x, y) == pytest.approx(math.log(2))


def test_scd_of_the_sum_of_two_sources() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 100, (2, 16, 16))
    # F - B = A and F - A = B: both correlations are exactly 1
    assert M.scd(a + b, a, b) == pytest.approx(2.0)


def test_cc_identity_and_inversion() -> None:
    a = np.random.default_rng(4).uniform(0, 255, (16, 16))
    assert M.cc(a, a, a) == pytest.approx(1.0)
    assert M.cc(255 - a, a, a) == pytest.approx(-1.0)
    assert M.cc(255 - a, a, 255 - a) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(M.cc(np.full((4, 4), 5.0), a[:4, :4], a[:4, :4]))


def test_psnr_hand_values() -> None:
    zeros, ones = np.zeros((4, 4)), np.ones((4, 4))
    assert M.psnr(zeros, ones, ones) == pytest.approx(10 * math.log10(255**2))
    # MSE(F, A) = 4, MSE(F, B) = 0 -> MSE = 2
    assert M.psnr(zeros, 2 * ones, zeros) == pytest.approx(10 * math.log10(255**2 / 2))
    assert M.psnr(ones, ones, ones) == math.inf


def test_ssim_uses_data_range_255() -> None:
    # constant images x, y: SSIM = (2 x y + C1) / (x^2 + y^2 + C1), C1 = (0.01 * 255)^2
    f, a = np.full((16, 16), 10.0), np.full((16, 16), 20.0)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 10 * 20 + c1) / (10**2 + 20**2 + c1)
    assert M.ssim(f, a, f) == pytest.approx(expected + 1.0)


def test_ssim_of_identical_images_is_two() -> None:
    a = np.random.default_rng(7).uniform(0, 255, (20, 20))
    assert M.ssim(a, a, a) == pytest.approx(2.0)


def test_vif_identical_constant_and_inverted() -> None:
    f, a, b = random_triple(2)
    assert M.vifp(a, a) == pytest.approx(1.0, abs=1e-8)
    assert M.vif(a, a, a) == pytest.approx(2.0, abs=1e-8)
    assert M.vifp(a, 255 - a) == 0.0  # negative gains are clamped to 0
    assert M.vifp(a, np.full_like(a, 128.0)) == 0.0  # flat fused image: no information
    flat = np.full_like(a, 50.0)
    assert M.vifp(flat, a) == 1.0  # flat reference: 0 / 0 -> 1
    assert M.vif(a, flat, flat) == 2.0


def qabf_identical_value() -> float:
    """Qabf(A, A, A) if every non-zero edge strength is >= 2: Tg * Ta / (1 + exp(ka (1 - Da)))."""
    return 0.9994 * 0.9879 / (1 + math.exp(-22 * (1 - 0.8)))


def square_image(top: int, left: int, value: float = 80.0) -> np.ndarray:
    image = np.zeros((24, 24))
    image[top : top + 8, left : left + 8] = value
    return image


def test_qabf_of_identical_images() -> None:
    a = square_image(6, 6)
    assert M.qabf(a, a, a) == pytest.approx(qabf_identical_value(), rel=1e-12)
    # B without edges does not count: Qabf = sum(Q_AF gA) / sum(gA)
    assert M.qabf(a, a, np.zeros_like(a)) == pytest.approx(qabf_identical_value(), rel=1e-12)


def test_qabf_ties_of_weak_edges_use_the_fused_strength() -> None:
    # F = A: on the square's sides gA == gF = 0.05 * 4 = 0.2, so G = gF = 0.2 (not 1) and
    # Qg = Tg / (1 + e^{4.5}) ~ 0.011 there; with G = 1 the value would be ~0.975
    a = square_image(6, 6, value=0.05)
    g_a, _ = M.sobel_strength_orientation(a)
    assert 0.2 in np.round(g_a, 12)
    strengths = g_a[g_a > 0]
    q_g = 0.9994 / (1 + np.exp(-15 * (strengths - 0.5)))
    q_a = 0.9879 / (1 + math.exp(-22 * (1 - 0.8)))
    expected = float(np.sum(q_g * q_a * strengths) / np.sum(strengths))
    assert M.qabf(a, a, a) == pytest.approx(expected, rel=1e-12)
    assert expected < 0.1


def test_qabf_of_a_shifted_edge() -> None:
    # a vertical edge moved by 3 columns: F has no edge where A has one -> G = 0 there
    a = step_image(20, 20, 8, high=100)
    f = step_image(20, 20, 11, high=100)
    zeros = np.zeros_like(a)
    shifted = M.qabf(f, a, zeros)
    assert shifted == pytest.approx(slow_qabf(f, a, zeros), rel=1e-12)
    assert shifted < 0.5 * M.qabf(a, a, zeros)


def test_qabf_orientation_of_a_horizontal_edge() -> None:
    # Gx == 0 on a horizontal edge: orientation pi/2, for any sign of Gy
    image = np.zeros((6, 6))
    image[3:, :] = 10
    _, orientation = M.sobel_strength_orientation(image)
    assert np.all(orientation[2:4, 1:5] == math.pi / 2)
    _, flipped = M.sobel_strength_orientation(image[::-1])
    assert np.all(flipped[2:4, 1:5] == math.pi / 2)
    # vertical edge: Gx != 0, Gy == 0 -> atan(0) = 0
    _, vertical = M.sobel_strength_orientation(image.T)
    assert np.all(vertical[1:5, 2:4] == 0.0)


def test_qabf_perpendicular_edges_score_near_zero() -> None:
    # A: vertical stripes (orientation 0 inside), F: horizontal stripes (pi/2 inside), so
    # A_AF = 0 and Qa ~ 2e-8 there; only the zero-padded border keeps some agreement
    a = np.zeros((32, 32))
    a[:, np.arange(32) % 4 < 2] = 80  # 80 80 0 0 80 80 0 0 ... : |Gx| = 320, Gy = 0
    f = a.T.copy()
    zeros = np.zeros_like(a)
    perpendicular = M.qabf(f, a, zeros)
    assert perpendicular == pytest.approx(slow_qabf(f, a, zeros), rel=1e-12)
    assert perpendicular < 0.01


# ---------------------------------------------------------------------------------------------
# properties and API


@pytest.mark.parametrize("name", ["MI", "SCD", "VIF", "Qabf", "SSIM", "PSNR", "CC"])
def test_symmetric_in_the_two_sources(name: str) -> None:
    f, a, b = random_triple(3)
    forward = M.compute_all(f, a, b)[name]
    backward = M.compute_all(f, b, a)[name]
    assert forward == pytest.approx(backward, rel=1e-12)


def test_mutual_information_is_symmetric_and_bounded() -> None:
    f, a, _ = random_triple(4)
    mi_fa = M.mutual_information(f, a)
    assert mi_fa == pytest.approx(M.mutual_information(a, f), rel=1e-12)
    # MI <= min(H(F), H(A)), entropies converted from bits to nats
    assert 0 < mi_fa <= min(M.en(f), M.en(a)) * math.log(2) + 1e-12


@pytest.mark.parametrize("seed", [5, 6])
def test_ranges(seed: int) -> None:
    values = M.compute_all(*random_triple(seed))
    assert 0 < values["EN"] <= 8
    assert values["SD"] > 0 and values["SF"] > 0 and values["AG"] > 0 and values["MI"] > 0
    assert -2 <= values["SCD"] <= 2
    assert 0 < values["Qabf"] < 1
    assert 0 < values["VIF"] < 2
    assert -2 < values["SSIM"] < 2
    assert -1 <= values["CC"] <= 1
    assert values["PSNR"] > 0


def slow_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM over every 7x7 window inside the image, sample statistics, data range 255."""
    c1, c2, n = (0.01 * 255) ** 2, (0.03 * 255) ** 2, 49
    h, w = x.shape
    total = 0.0
    for i in range(h - 6):
        for j in range(w - 6):
            u = [float(v) for v in x[i : i + 7, j : j + 7].ravel()]
            v = [float(t) for t in y[i : i + 7, j : j + 7].ravel()]
            mu, mv = sum(u) / n, sum(v) / n
            su = sum((p - mu) ** 2 for p in u) / (n - 1)
            sv = sum((q - mv) ** 2 for q in v) / (n - 1)
            suv = sum((p - mu) * (q - mv) for p, q in zip(u, v)) / (n - 1)
            total += ((2 * mu * mv + c1) * (2 * suv + c2)) / (
                (mu * mu + mv * mv + c1) * (su + sv + c2)
            )
    return total / ((h - 6) * (w - 6))


def test_compute_all_order_and_values() -> None:
    """Every value against its slow reference (SSIM: a window loop), on 8-bit inputs."""
    f, a, b = random_triple(7)
    values = M.compute_all(f.astype(np.uint8), a.astype(np.uint8), b.astype(np.uint8))
    assert tuple(values) == M.METRIC_NAMES
    assert all(isinstance(v, float) for v in values.values())
    references = {**SLOW, "SSIM": lambda f, a, b: slow_ssim(f, a) + slow_ssim(f, b)}
    assert set(references) == set(M.METRIC_NAMES)
    for name in M.METRIC_NAMES:
        assert values[name] == pytest.approx(references[name](f, a, b), rel=1e-9), name


def test_shape_mismatch_is_named() -> None:
    a = np.zeros((50, 50))
    expected = r"shape mismatch: fused \(50, 50\), ir \(50, 51\), vis \(50, 50\)"
    with pytest.raises(ValueError, match=expected):
        M.compute_all(a, np.zeros((50, 51)), a)


def test_non_2d_input_is_named() -> None:
    a = np.zeros((50, 50))
    with pytest.raises(ValueError, match=r"vis must be a 2-D grayscale image.*\(50, 50, 3\)"):
        M.qabf(a, a, np.zeros((50, 50, 3)))
    with pytest.raises(ValueError, match="fused must be a 2-D"):
        M.en(np.zeros(10))


def test_too_small_for_vif_is_named() -> None:
    a = np.zeros((40, 60))
    with pytest.raises(ValueError, match="VIF needs images of at least 41x41"):
        M.vif(a, a, a)
