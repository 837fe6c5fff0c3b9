"""Render a face depth map from a triangle mesh in plain numpy (z-buffer rasteriser).

Used by data preparation on MediaPipe's 468-vertex face mesh, and usable without MediaPipe
(the pack stores the triangles and the aligned vertices) to re-render at another size.
Convention follows HIDA / 3DDFA_V2's depth maps: near is bright, z is min-max normalised to
[0, 1] over the face's vertices, background is black (0).
"""

from __future__ import annotations

import numpy as np


def rasterise_depth(vertices, triangles, size, near_is_small_z: bool = True) -> np.ndarray:
    """Z-buffer the mesh into a (H, W) float32 map of normalised nearness in [0, 1].

    vertices: (V, 3) with x, y in continuous pixel coordinates of the output (pixel (i, j)
    has its centre at (i + 0.5, j + 0.5)) and z in any consistent unit.
    near_is_small_z: MediaPipe's z grows away from the camera, so the nearest point has the
    smallest z. Pixels not covered by the mesh are 0.
    size: int (square) or (width, height)."""
    w, h = (size, size) if isinstance(size, int) else size
    v = np.asarray(vertices, dtype=np.float64)
    tri = np.asarray(triangles, dtype=np.int64)
    z = v[:, 2]
    zmin, zmax = z.min(), z.max()
    span = max(zmax - zmin, 1e-9)
    near = (zmax - z) / span if near_is_small_z else (z - zmin) / span  # 1 = nearest vertex

    p = v[tri, :2]                   # (T, 3, 2)
    q = near[tri]                    # (T, 3)
    x0 = np.clip(np.floor(p[..., 0].min(1) - 0.5).astype(np.int64), 0, w)
    x1 = np.clip(np.ceil(p[..., 0].max(1) - 0.5).astype(np.int64) + 1, 0, w)
    y0 = np.clip(np.floor(p[..., 1].min(1) - 0.5).astype(np.int64), 0, h)
    y1 = np.clip(np.ceil(p[..., 1].max(1) - 0.5).astype(np.int64) + 1, 0, h)
    (ax, ay), (bx, by), (cx, cy) = p[:, 0].T, p[:, 1].T, p[:, 2].T
    det = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
    bw, bh = np.maximum(x1 - x0, 0), np.maximum(y1 - y0, 0)
    keep = (np.abs(det) > 1e-12) & (bw > 0) & (bh > 0)   # drop degenerate and off-canvas triangles
    t_ids = np.nonzero(keep)[0]
    counts = (bw * bh)[t_ids]
    zbuf = np.full(h * w, -np.inf)
    if counts.sum() > 0:
        # every pixel of every triangle's bounding box at once
        t = np.repeat(t_ids, counts)
        local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        px = x0[t] + local % bw[t]
        py = y0[t] + local // bw[t]
        gx, gy = px + 0.5, py + 0.5
        l0 = ((by[t] - cy[t]) * (gx - cx[t]) + (cx[t] - bx[t]) * (gy - cy[t])) / det[t]
        l1 = ((cy[t] - ay[t]) * (gx - cx[t]) + (ax[t] - cx[t]) * (gy - cy[t])) / det[t]
        l2 = 1.0 - l0 - l1
        eps = -1e-9  # shared edges: a pixel centre on an edge belongs to both triangles
        inside = (l0 >= eps) & (l1 >= eps) & (l2 >= eps)
        val = (l0 * q[t, 0] + l1 * q[t, 1] + l2 * q[t, 2])[inside]
        np.maximum.at(zbuf, (py * w + px)[inside], val)  # z-buffer: the nearest surface wins
    zbuf = zbuf.reshape(h, w)
    out = np.where(np.isfinite(zbuf), zbuf, 0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def depth_to_uint8(depth: np.ndarray) -> np.ndarray:
    return np.clip(np.round(depth * 255.0), 0, 255).astype(np.uint8)
