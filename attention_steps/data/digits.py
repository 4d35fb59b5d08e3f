"""scikit-learn's bundled 8×8 handwritten digits (1,797 images, no download), with the course's fixed split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: The fixed stratified split: 20 % test, chosen once with this seed. Never tune on the test split.
TEST_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass
class DigitsSplit:
    """Images are (N, 1, 8, 8) float32 in [0, 1]; labels (N,) int64 in 0…9."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_split(valid_fraction: float = 0.1) -> DigitsSplit:
    """The course's digits split: a fixed stratified 20 % test set, and a validation set carved from training.

    The test split is the same whatever ``valid_fraction`` is; tune on ``x_valid`` only.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None]
    y = data.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, stratify=y, random_state=SPLIT_SEED
    )
    if valid_fraction > 0:
        x_train, x_valid, y_train, y_valid = train_test_split(
            x_rest, y_rest, test_size=valid_fraction, stratify=y_rest, random_state=SPLIT_SEED
        )
    else:
        x_train, y_train = x_rest, y_rest
        x_valid, y_valid = x_rest[:0], y_rest[:0]
    t = torch.from_numpy
    return DigitsSplit(t(x_train), t(y_train), t(x_valid), t(y_valid), t(x_test), t(y_test))
