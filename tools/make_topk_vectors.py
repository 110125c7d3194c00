#!/usr/bin/python3
"""Test vectors for retrieval scoring (the topk kernel family, EmbeddingIndex.Search), ranked by NumPy.

Run with Debian's python3-numpy:  /usr/bin/python3 tools/make_topk_vectors.py
Writes tests/OmniKernels.Tests/vectors/topk_<name>.npy, identical on every run (fixed seed):
  index             float32 [300, 32]: random rows, L2-normalised (in float64, then cast)
  queries           float32 [8, 32]: query 0 is index row 3, query 1 index row 270, the rest random and normalised
  expected_indices  int32 [8, 10]: NumPy's ranking of index @ query (float64 products of the float32 values),
                    highest first, equal scores by lower index (np.lexsort on (index, -score))
  expected_scores   float64 [8, 10]: the scores in that order
Row 40 is a copy of row 3 and row 281 a copy of row 270, so queries 0 and 1 each have an exact tie
(score ~1) that the lower index must win. Apart from exact ties, neighbouring scores in each top 11
differ by more than 1e-5, so a float32 device ranking cannot flip them; the script checks it.
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "OmniKernels.Tests", "vectors")
N, E, Q, K = 300, 32, 8, 10


def normalised(rng, rows):
    x = rng.standard_normal((rows, E))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main():
    rng = np.random.default_rng(20261202)
    index = normalised(rng, N)
    index[40] = index[3]
    index[281] = index[270]
    queries = normalised(rng, Q)
    queries[0] = index[3]
    queries[1] = index[270]
    scores = queries.astype(np.float64) @ index.astype(np.float64).T
    ids = np.arange(N)
    order = np.stack([np.lexsort((ids, -scores[q])) for q in range(Q)])
    for q in range(Q):
        top = scores[q, order[q, :K + 1]]
        gaps = -np.diff(top)
        assert np.all((gaps == 0) | (gaps > 1e-5)), f"query {q}: near-tie {gaps.min()} in its top {K + 1}; change the seed"
    assert list(order[0, :2]) == [3, 40] and list(order[1, :2]) == [270, 281], "the planted ties"
    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, "topk_index.npy"), index)
    np.save(os.path.join(OUT, "topk_queries.npy"), queries)
    np.save(os.path.join(OUT, "topk_expected_indices.npy"), order[:, :K].astype(np.int32))
    np.save(os.path.join(OUT, "topk_expected_scores.npy"), np.take_along_axis(scores, order[:, :K], axis=1))


if __name__ == "__main__":
    main()
