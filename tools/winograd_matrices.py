"""Winograd minimal-filtering matrices F(m, r) from Toom-Cook, in exact rational arithmetic,
and the C code of their transforms (csrc/_forward_winograd.h).

    python tools/winograd_matrices.py            # check, then print the header
    python tools/winograd_matrices.py --write    # check, then write csrc/_forward_winograd.h

m outputs per tile side (M: 4 for r = 3, 2 for r = 5) and n = m + r - 1 evaluation
points: 0, +-1, +-2, inf for both, n = 6.
The 1-D correlation y_i = sum_k g_k d_{i+k} (Caffe's convolution, no kernel flip) is the
transpose of the linear convolution s = g * h, which Toom-Cook computes as
s = V^-1 [(E_r g) .* (E_m h)], E_k being the n x k evaluation matrix at the points (the
point at infinity takes the leading coefficient) and V = E_n. Transposing,
y = E_m^T [(E_r g) .* (V^-T d)], so A^T = E_m^T, G = E_r and B^T = V^-T; each column of
V^-1 is scaled to integers and its factor moved into the matching row of G, so that the
input transform (done in float on every call) has small integer coefficients and all
fractions sit in the filter transform (done once, in double). The 2-D form is
Y = A^T [(G g G^T) .* (B^T d B)] A. The script checks both against direct correlation
exactly (Fractions) and in float64 on random data before it writes anything.
"""
import argparse
import math
import random
import sys
from fractions import Fraction as Fr
from pathlib import Path

INF = None
# Outputs per tile side, per kernel size, and the n = m + r - 1 evaluation points. A
# bigger m costs fewer products per output ((m + r - 1)^2 / m^2 per channel pair) but needs
# more points, and points beyond +-1 bring coefficients (powers of 2 in A^T, 1/4 .. 1/24 in
# G, 4 and 5 in B^T) that magnify rounding; the output then also depends on a bigger input
# patch. conv3-5 (3x3, 13x13 outputs) take F(4x4, 3x3): 16 tiles x 36 products per channel
# pair against F(2x2, 3x3)'s 49 x 16, 1.36x fewer; conv2 (5x5, 27x27) takes F(4x4, 5x5):
# 49 tiles x 64 products against F(2x2, 5x5)'s 196 x 36, 2.25x fewer, with two more
# points, +-1/2 (smaller than +-3's coefficients: 21 and 17 in B^T, 1/8 to 8 in A^T).
# fc7 stayed within the same distance of Caffe's (golden verify: worst 2.37e-6 of the
# max, against 2.56e-6 with F(2x2, 5x5); the tolerance is 3e-5), and conv2 took 48 ms
# instead of 82 at batch 32 on one thread. The choice depends on r alone, never on the
# batch, so an image's arithmetic stays the same.
M = {3: 4, 5: 4}
POINTS = {3: [0, 1, -1, 2, -2, INF], 5: [0, 1, -1, 2, -2, Fr(1, 2), Fr(-1, 2), INF]}


def evaluation(points, k):
    """n x k: row j evaluates a degree-(k-1) polynomial (coefficients low to high)."""
    rows = []
    for p in points:
        if p is INF:
            rows.append([Fr(int(i == k - 1)) for i in range(k)])
        else:
            rows.append([Fr(p) ** i for i in range(k)])
    return rows


def inverse(a):
    n = len(a)
    aug = [list(row) + [Fr(int(i == j)) for j in range(n)] for i, row in enumerate(a)]
    for col in range(n):
        piv = next(r for r in range(col, n) if aug[r][col] != 0)
        aug[col], aug[piv] = aug[piv], aug[col]
        pv = aug[col][col]
        aug[col] = [v / pv for v in aug[col]]
        for r in range(n):
            if r != col and aug[r][col] != 0:
                f = aug[r][col]
                aug[r] = [x - f * y for x, y in zip(aug[r], aug[col])]
    return [row[n:] for row in aug]


def transpose(a):
    return [list(c) for c in zip(*a)]


def matmul(a, b):
    return [[sum(a[i][k] * b[k][j] for k in range(len(b))) for j in range(len(b[0]))]
            for i in range(len(a))]


def matrices(r):
    pts, m = POINTS[r], M[r]
    n = m + r - 1
    assert len(pts) == n
    vinv = inverse(evaluation(pts, n))            # n x n: columns <-> points
    g = evaluation(pts, r)
    # scale column j of V^-1 to coprime integers, the factor into row j of G
    for j in range(n):
        col = [vinv[i][j] for i in range(n)]
        den = math.lcm(*[c.denominator for c in col])
        num = math.gcd(*[int(c * den) for c in col])
        s = Fr(den, num)
        for i in range(n):
            vinv[i][j] *= s
        g[j] = [v / s for v in g[j]]
    at = transpose(evaluation(pts, m))            # m x n
    bt = transpose(vinv)                          # n x n
    return at, g, bt


def direct_2d(d, g):
    n, r = len(d), len(g)
    m = n - r + 1
    return [[sum(g[u][v] * d[i + u][j + v] for u in range(r) for v in range(r))
             for j in range(m)] for i in range(m)]


def winograd_2d(d, g, at, gm, bt):
    u = matmul(matmul(gm, g), transpose(gm))
    v = matmul(matmul(bt, d), transpose(bt))
    prod = [[u[i][j] * v[i][j] for j in range(len(u))] for i in range(len(u))]
    return matmul(matmul(at, prod), transpose(at))


def name(r):
    return f"F({M[r]}x{M[r]},{r}x{r})"


def check(r, at, gm, bt, trials=200):
    n = M[r] + r - 1
    rng = random.Random(r)
    worst = 0.0
    for t in range(trials):
        d = [[Fr(rng.randint(-50, 50), rng.randint(1, 9)) for _ in range(n)] for _ in range(n)]
        g = [[Fr(rng.randint(-50, 50), rng.randint(1, 9)) for _ in range(r)] for _ in range(r)]
        if winograd_2d(d, g, at, gm, bt) != direct_2d(d, g):
            raise AssertionError(f"{name(r)} is wrong (exact arithmetic)")
        df = [[float(v) for v in row] for row in d]
        gf = [[float(v) for v in row] for row in g]
        w = winograd_2d(df, gf, [[float(v) for v in row] for row in at],
                        [[float(v) for v in row] for row in gm],
                        [[float(v) for v in row] for row in bt])
        ref = direct_2d(df, gf)
        scale = max(abs(v) for row in ref for v in row) or 1.0
        worst = max(worst, max(abs(a - b) for ra, rb in zip(w, ref) for a, b in zip(ra, rb))
                    / scale)
    if worst > 1e-13:
        raise AssertionError(f"{name(r)} float64 error {worst:.1e}")
    return worst


def c_number(v):
    v = Fr(v)
    if v.denominator == 1:
        return f"{v.numerator}.0f"
    return f"({v.numerator}.0f / {v.denominator}.0f)"


def c_transform(name, mat, what):
    """out[i] = sum_j mat[i][j] in[j] on WL lanes at once (GCC/Clang vector extension, so
    that it is one vector operation per term whatever the strides), zero terms left out,
    +-1 as plain + and -. The sums run left to right, as written."""
    rows, used = [], sorted({j for row in mat for j, c in enumerate(row) if c != 0})
    for i, row in enumerate(mat):
        terms = []
        for j, c in enumerate(row):
            if c == 0:
                continue
            if c == 1:
                t = ("+", f"x{j}")
            elif c == -1:
                t = ("-", f"x{j}")
            else:
                t = ("-" if c < 0 else "+", f"{c_number(abs(c))} * x{j}")
            terms.append(t)
        expr = ("-" if terms[0][0] == "-" else "") + terms[0][1]
        for sign, t in terms[1:]:
            expr += f" {sign} {t}"
        rows.append(f"    *(wino_vec *)(out + {i} * os) = {expr};")
    lines = [f"/* {what} */",
             f"static inline __attribute__((always_inline)) void {name}"
             "(const float *in, ptrdiff_t is,\n    float *out, ptrdiff_t os)",
             "{"]
    lines += [f"    const wino_vec x{j} = *(const wino_vec *)(in + {j} * is);" for j in used]
    lines += rows + ["}", ""]
    return "\n".join(lines)


def fmt(mat):
    return "\n".join(" *   [" + ", ".join(f"{str(v):>6}" for v in row) + "]" for row in mat)


def header():
    out = ["/* Generated by tools/winograd_matrices.py: do not edit.",
           " *",
           " * Winograd F(mxm, rxr) transforms: Y = A^T [(G g G^T) .* (B^T d B)] A, checked",
           " * there against direct correlation in exact rational arithmetic and float64.",
           " * WINOr_M outputs per tile side and WINOr_N = m + r - 1 points for r x r kernels.",
           " * Each 1-D transform works on WL lanes (tiles) at once: in[j * is + l].",
           " */", "",
           "/* WL floats, any alignment (the lanes of V and Y start at any tile) */",
           "typedef float wino_vec __attribute__((vector_size(WL * sizeof(float)), aligned(4)));",
           ""]
    for r in (3, 5):
        at, g, bt = matrices(r)
        m = M[r]
        n = m + r - 1
        out.append(f"/* {name(r)}, points {POINTS[r][:-1]} and infinity\n * A^T =\n{fmt(at)}\n"
                   f" * G =\n{fmt(g)}\n * B^T =\n{fmt(bt)}\n */")
        out.append(f"#define WINO{r}_M {m}")
        out.append(f"#define WINO{r}_N {n}")
        out.append(f"static const double wino{r}_g[{n}][{r}] = {{")
        for row in g:
            out.append("    {" + ", ".join(f"{float(v)!r}" if Fr(float(v)) == v
                                           else f"{v.numerator}.0 / {v.denominator}.0"
                                           for v in row) + "},")
        out.append("};")
        out.append(c_transform(f"wino{r}_bt", bt, f"B^T (n = {n})"))
        out.append(c_transform(f"wino{r}_at", at, f"A^T ({m} x {n})"))
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write csrc/_forward_winograd.h")
    args = ap.parse_args(argv)
    for r in (3, 5):
        at, g, bt = matrices(r)
        worst = check(r, at, g, bt)
        print(f"{name(r)}: exact OK, float64 worst relative error {worst:.1e}",
              file=sys.stderr)
    text = header()
    if args.write:
        path = Path(__file__).resolve().parents[1] / "csrc" / "_forward_winograd.h"
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)
    else:
        print(text)


if __name__ == "__main__":
    main()
