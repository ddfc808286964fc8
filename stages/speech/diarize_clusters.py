"""The diarizer's clustering: spherical k-means over unit embeddings, the number of voices estimated
from the silhouette, tiny clusters folded away, centroids refitted, and each window's margin to the
nearest other voice."""

from __future__ import annotations

import numpy as np

MAX_SPEAKERS = 6
MIN_SILHOUETTE = 0.2
SILHOUETTE_STEP = 0.05
MIN_SPEAKER_S = 4.0
SAME_VOICE_COS = 0.91  # centroids this similar are one voice (measured: one espeak voice split
# into two gives 0.917-0.934; two espeak voices 0.857-0.904; two real voices 0.835-0.854)
MIN_CLUSTER_SHARE = 0.04


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def spherical_kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 6,
                     iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Labels and unit centroids maximising total cosine similarity (k-means++ starts)."""
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(n_init):
        cents = [x[rng.integers(len(x))]]
        for _ in range(1, k):
            d = np.clip(1.0 - np.max(x @ np.stack(cents).T, axis=1), 0.0, None) ** 2
            p = d / d.sum() if d.sum() > 0 else None
            cents.append(x[rng.choice(len(x), p=p)])
        c = np.stack(cents)
        labels = np.zeros(len(x), np.int64)
        for it in range(iters):
            new = np.argmax(x @ c.T, axis=1)
            if it and np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                members = x[labels == j]
                c[j] = _normalise(members.sum(0)) if len(members) else x[rng.integers(len(x))]
        score = float(np.sum(np.max(x @ c.T, axis=1)))
        if best is None or score > best[0]:
            best = (score, labels.copy(), c.copy())
    assert best is not None
    return best[1], best[2]


def silhouette(x: np.ndarray, labels: np.ndarray, max_n: int = 2000, seed: int = 0) -> float:
    """Mean silhouette on cosine distance (a seeded subsample past ``max_n`` points)."""
    if len(set(labels.tolist())) < 2:
        return 0.0
    if len(x) > max_n:
        idx = np.random.default_rng(seed).choice(len(x), max_n, replace=False)
        x, labels = x[idx], labels[idx]
    d = 1.0 - x @ x.T
    ks = np.unique(labels)
    mean_to = np.stack([d[:, labels == k].mean(axis=1) for k in ks], axis=1)  # (n, k)
    own = np.searchsorted(ks, labels)
    counts = np.array([(labels == k).sum() for k in ks])
    a = mean_to[np.arange(len(x)), own] * counts[own] / np.maximum(counts[own] - 1, 1)
    mean_to[np.arange(len(x)), own] = np.inf
    b = mean_to.min(axis=1)
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-9)
    s[counts[own] == 1] = 0.0
    return float(s.mean())


def estimate_speakers(x: np.ndarray, speech_s: float,
                      max_speakers: int = MAX_SPEAKERS) -> tuple[np.ndarray, np.ndarray, float]:
    """(labels, centroids, silhouette) with the number of speakers chosen from the data.

    ``speech_s`` is the speech the windows cover. A split is a real second (third, ...)
    voice only when its silhouette reaches ``MIN_SILHOUETTE``, every cluster holds at
    least ``MIN_SPEAKER_S`` of speech, no two centroids are as alike as ``SAME_VOICE_COS``,
    and each added speaker raises the silhouette by
    ``SILHOUETTE_STEP`` (GE2E windows of one noisy voice also split, but into small,
    barely better-separated parts).
    """
    one = (np.zeros(len(x), np.int64), _normalise(x.sum(0, keepdims=True)), 0.0)
    if len(x) < 6:
        return one
    best = one
    for k in range(2, min(max_speakers, len(x) // 3) + 1):
        labels, cents = spherical_kmeans(x, k)
        labels, cents = _fold_small(x, labels, cents)
        if len(cents) < k:
            break  # a cluster was only stray windows: no support for k voices
        shares = np.bincount(labels, minlength=k) / len(labels)
        if shares.min() * speech_s < MIN_SPEAKER_S:
            break
        sims = cents @ cents.T
        np.fill_diagonal(sims, -1.0)
        if sims.max() >= SAME_VOICE_COS:
            break
        sil = silhouette(x, labels)
        need = MIN_SILHOUETTE if best[2] == 0.0 else best[2] + SILHOUETTE_STEP
        if sil < need:
            break
        best = (labels, cents, sil)
    return best


def refit_centroids(x: np.ndarray, cents: np.ndarray, iters: int = 20) -> np.ndarray:
    """Spherical k-means steps from ``cents`` over ``x`` (the number of voices kept)."""
    c = cents.copy()
    labels = np.argmax(x @ c.T, axis=1)
    for _ in range(iters):
        for j in range(len(c)):
            members = x[labels == j]
            if len(members):
                c[j] = _normalise(members.sum(0))
        new = np.argmax(x @ c.T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return c


def _fold_small(x: np.ndarray, labels: np.ndarray, cents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    share = np.bincount(labels, minlength=len(cents)) / len(labels)
    keep = np.nonzero(share >= MIN_CLUSTER_SHARE)[0]
    if len(keep) == len(cents):
        return labels, cents
    c = cents[keep]
    labels = np.argmax(x @ c.T, axis=1)
    c = np.stack([_normalise(x[labels == j].sum(0)) for j in range(len(c))])
    return labels, c


def margins(x: np.ndarray, labels: np.ndarray, cents: np.ndarray) -> np.ndarray:
    """Each window's cosine to its own centroid less its best cosine to another (inf with one voice)."""
    sims = x @ cents.T
    if sims.shape[1] < 2:
        return np.full(len(x), np.inf)
    own = sims[np.arange(len(x)), labels]
    sims[np.arange(len(x)), labels] = -np.inf
    return own - sims.max(axis=1)
