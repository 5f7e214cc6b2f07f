"""The few loops of stage 1b that numpy cannot run as one pass, compiled with numba.

At 48M answers every numpy operation is a pass over memory with a temporary of its own: splitting the
table by dimension costs one gather per column and dimension, a weighted vote with a posterior ~10
passes. Each kernel below is one pass. Kernels write their large outputs into arrays the caller
allocates (numba's own allocations escape tracemalloc, so benchmarks would not see them) and are
compiled once per argument types, then cached on disk next to this file (or under NUMBA_CACHE_DIR).
"""

from __future__ import annotations

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True)


@jit
def count_by_dimension(dim_code, label_code, n_dims, n_labels):
    """(offsets of each dimension's block once rows are grouped by dimension, (n_dims + 1,); which labels
    each dimension's rows name, (n_dims, n_labels + 1) with the null label (-1) in the last column)."""
    starts = np.zeros(n_dims + 1, dtype=np.int64)
    seen = np.zeros((n_dims, n_labels + 1), dtype=np.bool_)
    for i in range(len(dim_code)):
        starts[dim_code[i] + 1] += 1
        seen[dim_code[i], label_code[i]] = True  # -1 wraps around to the last column, as in numpy
    for d in range(n_dims):
        starts[d + 1] += starts[d]
    return starts, seen


@jit
def group_by_dimension(dim_code, starts, lookup, user, teacher, label_code, conf,
                       out_user, out_teacher, out_label, out_conf, out_row, present, missing):
    """Copy each row to the next free slot of its dimension's block, in table order within a block (a
    stable counting sort in one pass), with its label code per dimension (`lookup[dimension, label]`) and
    its confidence clamped to [0, 1] (NaN, and labels coded `missing`: 0); mark the user present in the dimension."""
    fill = starts[:-1].copy()
    for i in range(len(dim_code)):
        d = dim_code[i]
        j = fill[d]
        fill[d] = j + 1
        label = lookup[d, label_code[i]]
        c = conf[i]
        out_user[j] = user[i]
        out_teacher[j] = teacher[i]
        out_label[j] = label
        out_conf[j] = min(c, 1.0) if c > 0 and label != missing else 0.0
        out_row[j] = i
        present[d, user[i]] = True


@jit
def confidence_odds(conf, k, out):
    """c (K-1) / (1 - c), c clipped to [1/K + 1e-3, 1 - 1e-3]: the log of it (numpy's SIMD log) is an answer's evidence."""
    low, high = 1.0 / k + 1e-3, 1.0 - 1e-3
    for i in range(len(conf)):
        c = min(max(conf[i], low), high)
        out[i] = c * (k - 1) / (1.0 - c)


@jit
def add_votes(user, label, conf, log_odds, sample_weight, floor, k, votes, evidence):
    """For each answer with a label (>= 0): max(confidence, floor) into `votes` and its log-odds into `evidence`,
    at the flat cell user * k + label, each times its sample weight (an empty `sample_weight`: all 1)."""
    whole = len(sample_weight) == 0
    for i in range(len(user)):
        lab = label[i]
        if lab < 0:
            continue
        w = 1.0 if whole else sample_weight[i]
        cell = user[i] * k + lab
        votes[cell] += max(conf[i], floor) * w
        evidence[cell] += log_odds[i] * w


@jit
def divide_by_row_sums(m, totals):
    """Each row of `m` divided by its sum, in place; the sums go to `totals`."""
    for u in range(m.shape[0]):
        total = 0.0
        for j in range(m.shape[1]):
            total += m[u, j]
        for j in range(m.shape[1]):
            m[u, j] /= total
        totals[u] = total


@jit
def rounded_argmax(m, out):
    """Per row, the first column holding the largest value rounded to 9 decimals (np.round's rint(x * 1e9));
    NaN never wins, so an all-NaN row gives 0."""
    for u in range(m.shape[0]):
        best, top = 0, -np.inf
        for j in range(m.shape[1]):
            value = np.rint(m[u, j] * 1e9)
            if value > top:
                best, top = j, value
        out[u] = best


@jit
def mean_confidence(teacher, label, conf, floor, n_teachers):
    """(n_teachers,) each teacher's mean max(confidence, floor) over its answers with a label (0 without any)."""
    total, count = np.zeros(n_teachers), np.zeros(n_teachers)
    for i in range(len(teacher)):
        if label[i] >= 0:
            total[teacher[i]] += max(conf[i], floor)
            count[teacher[i]] += 1
    return total / np.maximum(count, 1)


@jit
def count_entries(user, label, extra_user, indptr):
    """CSR row pointers of a users x columns matrix holding one entry per answer with a label and one per
    extra entry: indptr[u + 1] - indptr[u] entries for user u (`indptr` zeroed by the caller)."""
    for i in range(len(user)):
        if label[i] >= 0:
            indptr[user[i] + 1] += 1
    for i in range(len(extra_user)):
        indptr[extra_user[i] + 1] += 1
    for u in range(len(indptr) - 1):
        indptr[u + 1] += indptr[u]


@jit
def fill_soft_counts(user, teacher, label, conf, sample_weight, mean_conf, floor, k,
                     extra_user, extra_col, extra_val, indptr, cols, vals):
    """CSR entries, per user in table order: column teacher * k + label and soft count
    max(confidence, floor) / teacher's mean x sample weight per answer with a label, then the extra entries."""
    whole = len(sample_weight) == 0
    fill = indptr[:-1].copy()
    for i in range(len(user)):
        if label[i] < 0:
            continue
        j = fill[user[i]]
        fill[user[i]] = j + 1
        cols[j] = teacher[i] * k + label[i]
        vals[j] = max(conf[i], floor) / mean_conf[teacher[i]] * (1.0 if whole else sample_weight[i])
    for i in range(len(extra_user)):
        j = fill[extra_user[i]]
        fill[extra_user[i]] = j + 1
        cols[j], vals[j] = extra_col[i], extra_val[i]
