"""Default settings of the neighbour objective, derived from the table's size alone (issue 14).

Pure arithmetic, no TensorFlow and no imports beyond `math`: the job defaults and `reducer check`
can call it at no cost. The rules and the measurements behind them: `neighbor_settings`, and
benchmarks/README.md, "Good maps by default (issue 14)".
"""

import math

# The normalisation of the neighbour objective where the dataset says "minmax" and the job names
# none (config.Job.for_dataset); a dataset's fixed (offset, scale), such as the digits' pixels /
# 16, is kept. Measured (seed 1, n_neighbors 10, each in its own space): wine trustworthiness@5
# 0.963 z-scored vs 0.943 min-max (UMAP: 0.957 / 0.958), iris 0.990 vs 0.980 (UMAP: 0.986 /
# 0.983); and ReLU layers trained on a min-max clusters table collapsed the map to one point.
DEFAULT_NORMALIZE = "zscore"
NARROW = 8  # tables of at most this many columns get tanh hidden layers, wider ones ReLU

STEPS = 6000  # optimiser steps: the shipped digits and iris presets' 6,000
MIN_EPOCHS = 40  # on larger tables each row is still picked about this many times ...
MAX_STEPS = 40_000  # ... within this many steps (100,000 rows: 40 epochs of 196 steps; 1,000,000: 20 epochs)
SMALL_ROWS = 150  # tables of fewer rows get one hidden layer of SMALL_HIDDEN units (issue 23) ...
SMALL_HIDDEN = 64
NEIGHBOURS = 10  # ... at most a third of their rows as graph neighbours, up to this many ...
SMALL_EPOCHS = 300  # ... and at most this many epochs (15 rows: 300 steps, not 6,000)
LEARNING_RATE = 0.01  # Adam's learning rate up to BIG_ROWS rows, for up to COHERENT_COLUMNS columns ...
COHERENT_COLUMNS = 64  # ... wider tables: LEARNING_RATE x COHERENT_COLUMNS / columns (issue 23, eighth session),
WIDE_LEARNING_RATE = 0.0025  # ... but not below this;
FEW_ROWS = 300  # ... from SMALL_ROWS to FEW_ROWS rows, COHERENT_COLUMNS x rows / FEW_ROWS (issue 23, tenth session)
LONGER = 2.0  # a table whose rate the columns lowered trains LEARNING_RATE / its rate times the steps, up to this
BIG_ROWS = 20_000  # ... above it (issue 22) ...
BIG_LEARNING_RATE = 0.005  # ... this, and an encoder of BIG_HIDDEN
BIG_HIDDEN = [96, 96, 96]
# Tables of at most NARROW columns and NARROW_DEEP_ROWS to BIG_ROWS rows (issue 23, seventh
# session): a third hidden layer and half the decoder's weight (RECONSTRUCTION_WEIGHT elsewhere).
NARROW_DEEP_ROWS = 500
NARROW_HIDDEN = [96, 96, 96]
NARROW_RECONSTRUCTION_WEIGHT = 10.0
RECONSTRUCTION_WEIGHT = 20.0


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def neighbor_settings(rows: int, columns: int) -> dict[str, dict]:
    """{"model": {...}, "training": {...}}: `objective = "neighbors"` settings for a table of
    `rows` x `columns`, for the keys a job leaves out; plain values, a fresh dict each call.
    Measured on z-scored or fixed-scale columns (DEFAULT_NORMALIZE, the digits' pixels / 16); on
    min-max scaled or raw columns, which a job may name, the encoder trains on standardised
    ones (neighbor_train.train's `standardise`), without which these settings collapsed maps.

    Measured by real `reducer run` jobs (trustworthiness@5 / kNN accuracy from the manifest, in
    the job's normalised space; benchmarks/README.md, "Good maps by default (issue 14)"):

    - batch_size = rows / 14 to the nearest power of two, 32 to 512: digits' 128 (the shipped
      preset), iris's and wine's 32 (iris at 16: t5 0.969 vs 0.975 at 32).
    - negative_samples = rows / 5, 30 to 80: iris's 30 (80 on iris: 0.974 vs 0.975), digits' 80.
    - epochs: 6,000 steps (iris 1,200, wine 1,000, digits 400), at least 40 epochs on large
      tables, within 40,000 steps. Twice the steps on iris/wine: +-0.005 (noise). Fewer on digits
      cost its kNN accuracy (worst of seeds 1-3: 0.9850 at 400 epochs, 0.9827 at 350, 0.9839 at 300).
      The 40 binds from 38,401 rows on (6,000 steps below): 100 epochs until issue 22's deeper
      encoder, with which fewer epochs on the 100,000 x 50 table cost little (three layers of
      128: kNN accuracy 0.9475 at 100 epochs, 0.9467 at 50, 0.9380 at 40) and issue 22's time
      goal (half umap-learn's wall time) needs the training shorter.
    - min_dist: 0.5 up to 200 rows, 0.1 from 1,600, log-linear between (iris 0.1: 0.964 vs 0.975 at
      0.5; wine 0.1: 0.927 vs 0.940; digits 0.5: 0.983 vs 0.987 at 0.1).
    - n_neighbors = 10, not UMAP's 15: iris 0.980 / 0.990 (min-max / z-score) vs 0.975 / 0.980 at
      15, digits 0.9889 / 0.9872 vs 0.9888 / 0.9855; 8 is no better (iris 0.982 / 0.976).
    - reconstruction_weight = 20: the decoder is trained (the manifest's reconstruction_mse is set)
      and, at this weight, the map keeps more of the table's spread: wine kNN accuracy 0.955 vs
      0.938 at 5 (z-scored; PCA 0.966), digits 0.9889 / 0.9872 vs 0.9877 / 0.9850 at 5.
    - hidden [96, 96], linear code layer (iris at [256, 256]: 0.973 vs 0.975), learning_rate 0.01
      (issue 23, sixth session): at 0.02, the digits and iris presets' rate, the 189 x 500
      table's map was a lottery, collapsed on one seed of eight (kNN accuracy 0.148) and short
      of its goals on another, its loss jumping at 10-40% of the run; at 0.01 both goals on all
      eight. Over seeds 1-6 of the tuning tables at 0.01: iris kNN accuracy 0.953 (0.951 at
      0.02; both seeds 1-2 met), the 572 x 8 table 0.773 (0.762), digits the same (0.9847), the
      342 x 4 table's trustworthiness 0.9730 (0.9743), wine's kNN accuracy 0.9439 (0.9476: two
      rows of 178 on seeds 1-2). Iris at 0.005: 0.965 trustworthiness vs 0.975 at 0.02.
    - learning_rate 0.01 x 64 / columns on tables wider than COHERENT_COLUMNS (up to BIG_ROWS
      rows; issue 23, eighth session): Adam moves every weight by about the learning rate, so
      when a batch's rows share their signs across many columns (well-separated groups) a unit's
      input moves by about the rate x the columns in one step. At 0.01 the loss jumped about and
      three separated groups of 200 rows collapsed onto one point each (a group 0.0% of the map)
      on 2 of 3 seeds from 80 columns, on every seed at 300 and 500; at 0.01 x 64 / columns none
      of 21 runs did (80-500 columns; groups 15-37% of the map); 500 and 2,000 rows of 150
      columns kept their groups at 0.01 too. The 189 x 500 table's trustworthiness@5 rose by
      0.03 (seeds 1-4: 0.727-0.733 against 0.692-0.709, kNN accuracy 0.545 against 0.531 mean),
      the 300 x 300 table's held (0.952-0.953). Digits (64 columns) keeps 0.01. Not below
      WIDE_LEARNING_RATE (0.0025, from 256 columns): 5,000 MNIST digits (784 columns) were
      under-trained at 0.01 x 64 / 784 (trustworthiness@5 0.898 / 0.894 on seeds 1 / 2 against
      0.925 / 0.922 at 0.01; 0.920 / 0.916 at 0.0025), while 0.005 let a group of 2,000 rows of
      784 columns collapse (seed 2) and 0.0025 kept every group on 9 runs of 200-2,000 rows x
      500-784 columns.
    - from SMALL_ROWS to FEW_ROWS rows the columns' rule starts at 64 x rows / 300 columns, and a
      rate the columns lowered trains LEARNING_RATE / rate times the steps, at most LONGER (issue
      23, tenth session). Three separated groups (make_blobs, std 1 in a box of +-20) in 150-200
      rows of 64-80 columns still ended with a group on one point at 0.01 x 64 / columns (200 x
      64: 3 of 4 seeds, 150 x 70: 2 of 4, 200 x 80: 1 of 8; the loss jumping from 9 to 19 a sixth
      of the way in and never coming back), where 300 rows of 64 or 100 columns kept every group
      (8 of 8); fewer epochs did not help (200 x 64 at 600 epochs: 2 of 3 still on one point), a
      lower rate did (0.0067 at 200 x 64: 3 of 3 kept). With both rules 32 runs of 150-250 rows x
      64-100 columns kept every group at 16% of the map or more, at most 0.8% stacked. The longer
      training is for the rate's sake: a 1,797 x 784 table (the digits' images enlarged to 28 x 28)
      at 0.0025 reached trustworthiness@5 / kNN accuracy 0.9884 / 0.9688 and 0.9876 / 0.9677 on
      seeds 1 / 2 with twice the steps, 0.9833 / 0.9655 and 0.9846 / 0.9610 with the same steps
      (umap-learn 0.981 / 0.979), 4x no better for kNN accuracy (0.9672 / 0.9633). Sized as
      before: tables of at most 64 columns from 300 rows (digits), under SMALL_ROWS rows, above BIG_ROWS.
    - above BIG_ROWS rows (issue 22): learning_rate 0.005 and three hidden layers of 96
      (BIG_HIDDEN). Tens of thousands of steps at 0.02 kept the encoder jumping: on
      benchmarks/scale.py's 100,000 x 100 clusters table (ten far-apart Gaussian clusters)
      trustworthiness@5 / kNN accuracy 0.862 / 0.703 at 0.02 (worse than PCA's 0.940 / 0.901),
      0.958 / 1.000 at 0.005. Two layers of 96 could not draw the 100,000 x 50
      make_classification table's 20 clusters as apart as umap-learn's free points do (0.881 /
      0.911 against umap-learn's 0.876 / 0.943; fitted to umap-learn's map directly, [96, 96]
      reached kNN accuracy 0.880, [128, 128, 128] 0.935, [256, 256] 0.916). Three layers of 96
      at 40 epochs, seeds 1-3: 0.893 / 0.939, 0.892 / 0.932, 0.890 / 0.934, for 0.6x the
      training of two layers of 96 at 100 epochs; three of 128 at 40 epochs 0.895 / 0.938 and
      0.894 / 0.940 for 0.8x (at 50 epochs 0.898 / 0.943). At 30,000 rows (6,000 steps), seeds
      1 / 2: [96, 96, 96] 0.893 / 0.924 and 0.892 / 0.927, against [96, 96] at the earlier
      learning rate's 0.867 / 0.900 and 0.864 / 0.887 (umap-learn 0.866 / 0.927). The deeper
      encoder wants the smaller rate ([128, 128, 128] at 30,000 rows: kNN accuracy 0.916 / 0.917
      at the earlier 0.0141, 0.939 / 0.925 at 0.005). [256, 256, 256] cost 2.5x the time for no
      better map; four layers of 128 were worse; funnels ([128, 128, 64], [128, 96, 64]) no
      cheaper and worse. benchmarks/README.md, "Big tables on the default path (issue 22)".
    - below SMALL_ROWS rows, one hidden layer of 64 and at most rows / 3 neighbours (issue 23):
      on tables of 15, 60 and 120 rows in three separated groups, two tanh layers of 96 put
      whole groups on one point (saturated units: every row of a group got the same code, each
      group's extent 0.0-0.3% of the map's, seeds 1-3), one layer of 64 kept them apart (2-26%);
      15 rows with 10 neighbours (a group is 5 rows) still squeezed one group to 1.0-1.3%, with 5
      neighbours 2.0-10%; and at most 300 epochs (6,000 steps on 15 rows let units saturate
      again over time: 60 rows, one group at 0.0% after 3,000 epochs where 300 kept 14-18%).
      Seeds 1-3 on 15, 60 and 120 rows: every group at least 4.9% of the map, median
      nearest-neighbour distance at least 0.30% of its extent (at most 500 epochs: one group of
      the 15-row table at 1.7% on seed 3, median nearest down to 0.22%).
      benchmarks/README.md, "Small tables (issue 23)". Iris (150 rows) and wine keep [96, 96]:
      one layer of 64 cost them kNN accuracy (iris seed 1 0.940 vs 0.960, wine 0.922 vs 0.955).
    - from NARROW_DEEP_ROWS to BIG_ROWS rows of at most NARROW columns, three hidden layers of 96
      and reconstruction_weight 10 (issue 23, seventh session): on the 572 x 8 table of nine
      groups the decoder's pull at 20 left the groups diffuse (kNN accuracy, seeds 1-8, mean
      0.772, UMAP 0.797 / 0.790 on seeds 1-2); the two together 0.784 (both seeds' goals met),
      either alone not (weight 10 with two layers 0.777, three layers at 20 0.772 over seeds
      1-4), and trustworthiness 0.004 higher; kept out of tuning, the 800 x 6 table met its goals
      too. Below 500 rows three tanh layers stacked whole groups of a 150- or 200-row table of
      three separated groups on one point (93-100% of rows stacked, seeds 1-3; 300 rows: 7% on
      seed 1), where two layers keep them apart; from 500 rows they met the small-table figures.
      benchmarks/README.md, "(issue 23, seventh session)".
    - robust_input = true (issue 23, ninth session; engine/model.py's HEAVY_RATIO): columns whose
      spread a few far values set reach the encoder drawn apart and squashed, built only where a
      table has such a column. Three rows at +1,000 in 303 rows of three groups stacked 98% / 45%
      of the rows on seeds 2 / 3 with the plain encoder, 0.7-4% with it (trustworthiness +0.005 to
      +0.03); benchmarks/README.md, "The robust input".
    - activation tanh up to NARROW columns, else relu (seeds 1-3, z-scored): iris with tanh met
      its goal on all three seeds (kNN accuracy 0.960 / 0.947 / 0.953), with relu not on seed 1
      (0.947 against 0.952); digits with relu on all three, with tanh on none (kNN accuracy
      0.984 / 0.983 / 0.983 against 0.985); wine short of PCA's kNN accuracy either way on some
      seeds. benchmarks/README.md has the full table.
    """
    rows, columns = max(int(rows), 1), max(int(columns), 1)
    batch = int(_clamp(2 ** round(math.log2(max(rows, 1) / 14)), 32, 512))
    negatives = int(_clamp(round(rows / 5), 30, 80))
    steps_per_epoch = math.ceil(rows / min(batch, rows))
    epochs = max(math.ceil(STEPS / steps_per_epoch), min(MIN_EPOCHS, MAX_STEPS // steps_per_epoch), 1)
    t = _clamp((math.log(max(rows, 1)) - math.log(200)) / (math.log(1600) - math.log(200)), 0.0, 1.0)
    min_dist = round(0.5 - 0.4 * t, 2)
    narrow = columns <= NARROW and NARROW_DEEP_ROWS <= rows <= BIG_ROWS
    hidden = ([SMALL_HIDDEN] if rows < SMALL_ROWS else list(BIG_HIDDEN) if rows > BIG_ROWS
              else list(NARROW_HIDDEN) if narrow else [96, 96])
    # Few rows move together more: below FEW_ROWS rows the columns' rule starts at fewer columns.
    coherent = COHERENT_COLUMNS * (min(1.0, rows / FEW_ROWS) if rows >= SMALL_ROWS else 1.0)
    learning_rate = (BIG_LEARNING_RATE if rows > BIG_ROWS
                     else float(f"{max(WIDE_LEARNING_RATE, LEARNING_RATE * min(1.0, coherent / columns)):.3g}"))
    if rows <= BIG_ROWS:  # a rate the columns lowered trains longer, up to LONGER times the steps
        epochs = math.ceil(epochs * min(LEARNING_RATE / learning_rate, LONGER))
    if rows < SMALL_ROWS:
        epochs = min(epochs, SMALL_EPOCHS)
    neighbours = int(_clamp(rows // 3, 2, NEIGHBOURS))
    return {
        "model": {"objective": "neighbors", "hidden": hidden,
                  "activation": "tanh" if columns <= NARROW else "relu",
                  "latent_activation": "linear", "n_neighbors": neighbours, "min_dist": float(min_dist),
                  "reconstruction_weight": NARROW_RECONSTRUCTION_WEIGHT if narrow else RECONSTRUCTION_WEIGHT,
                  "robust_input": True},
        "training": {"epochs": int(epochs), "batch_size": batch, "learning_rate": learning_rate,
                     "negative_samples": negatives},
    }


def sized_keys() -> list:
    """"section.key" of every setting reducer may size from the table, in neighbor_settings' order."""
    return [f"{section}.{key}" for section, values in neighbor_settings(1, 1).items() for key in values]


# How a warm night trains (issue 21). The neighbour objective trains WARM_FRACTION of the job's
# epochs at WARM_LEARNING_RATE x its learning rate (falling to 0 as a cold run's does), with the
# rows present last night held near their published places by an anchor of strength WARM_ANCHOR
# (neighbor_train.Anchor): enough training for tonight's rows to find their places (the
# trustworthiness of a cold run), while the anchor keeps the map where it was. The job's own
# learning rate: at a quarter of it (a quarter of the epochs, anchor 30) new and changed rows
# were never fully placed and the trustworthiness fell a little every night (diabetes:
# 0.004-0.007 below night 1's by night 7 on seeds 1-3, 0.012 below a cold run); at twice it the
# map moved more than 0.03 of its spread and lost trustworthiness too. At the full rate the
# anchor holds harder (100, not 30), so the rows readers saw move no more than before, and half
# the epochs (not a quarter) let the rate fall slowly enough: with a quarter, breast cancer's
# trustworthiness still fell night after night (benchmarks/README.md, "Ten nights").
# The reconstruction objective has no anchor: it trains epochs / 100 at 1/20 of the learning
# rate, where full-strength epochs carried the map away.
WARM_FRACTION = 0.5
WARM_LEARNING_RATE = 1.0
WARM_ANCHOR = 100.0
GENTLE_FRACTION = 0.01
GENTLE_LEARNING_RATE = 0.05


def warm_schedule(objective: str, epochs: int) -> tuple[int, float, float]:
    """(epochs, learning-rate factor, anchor strength) of a warm start of a job of `epochs`
    epochs; the anchor strength is 0 where there is none (the reconstruction objective)."""
    if objective == "neighbors":
        return max(1, math.ceil(epochs * WARM_FRACTION)), WARM_LEARNING_RATE, WARM_ANCHOR
    return max(1, math.ceil(epochs * GENTLE_FRACTION)), GENTLE_LEARNING_RATE, 0.0
