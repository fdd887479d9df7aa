"""A constant-velocity Kalman filter over a box's centre x, centre y, aspect (width / height) and height.

The state and noise model of SORT and ByteTrack (Bewley et al. 2016, Zhang et al. 2022): position
and velocity noise proportional to the box's height, so a near box may move more than a far one,
and an aspect that changes slowly. One step is one analysed frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Uncertainty of a measured position, and of a velocity per step, as shares of the box's height.
POSITION_NOISE = 1 / 20
VELOCITY_NOISE = 1 / 160
MEASUREMENT_NOISE = 1 / 20
# The aspect's own noise: a person's outline changes shape slowly.
ASPECT_NOISE, ASPECT_VELOCITY_NOISE, ASPECT_MEASUREMENT_NOISE = 1e-2, 1e-5, 1e-1

_TRANSITION = np.eye(8) + np.eye(8, k=4)
_MEASURE = np.eye(4, 8)


@dataclasses.dataclass
class BoxFilter:
    """One box's estimate: mean (cx, cy, aspect, height and their velocities) and covariance."""

    mean: np.ndarray
    covariance: np.ndarray

    @classmethod
    def start(cls, measured: np.ndarray) -> BoxFilter:
        """A filter at `measured` (cx, cy, aspect, height), at rest but with an uncertain velocity."""
        height = measured[3]
        std = [2 * POSITION_NOISE * height, 2 * POSITION_NOISE * height, ASPECT_NOISE, 2 * POSITION_NOISE * height,
               10 * VELOCITY_NOISE * height, 10 * VELOCITY_NOISE * height, ASPECT_VELOCITY_NOISE,
               10 * VELOCITY_NOISE * height]
        return cls(np.concatenate([measured, np.zeros(4)]), np.diag(np.square(std)))

    def copy(self) -> BoxFilter:
        return BoxFilter(self.mean.copy(), self.covariance.copy())

    def predict(self, keep_size: bool = False) -> None:
        """One step ahead. `keep_size`: the aspect and height stay as they are (a box not seen for a
        while must not grow or shrink on a velocity measured before the gap)."""
        if keep_size:
            self.mean[6:] = 0.0
        height = self.mean[3]
        std = [POSITION_NOISE * height, POSITION_NOISE * height, ASPECT_NOISE, POSITION_NOISE * height,
               VELOCITY_NOISE * height, VELOCITY_NOISE * height, ASPECT_VELOCITY_NOISE, VELOCITY_NOISE * height]
        self.mean = _TRANSITION @ self.mean
        self.covariance = _TRANSITION @ self.covariance @ _TRANSITION.T + np.diag(np.square(std))

    def update(self, measured: np.ndarray) -> None:
        """Corrects the estimate with a measured (cx, cy, aspect, height)."""
        height = self.mean[3]
        noise = np.diag(np.square([MEASUREMENT_NOISE * height, MEASUREMENT_NOISE * height, ASPECT_MEASUREMENT_NOISE,
                                   MEASUREMENT_NOISE * height]))
        projected = self.covariance[:4, :4] + noise
        # The gain K = P H^T S^-1, from the symmetric system S K^T = H P.
        gain = np.linalg.solve(projected, self.covariance[:4]).T
        self.mean = self.mean + gain @ (measured - self.mean[:4])
        self.covariance = self.covariance - gain @ _MEASURE @ self.covariance

    def box(self) -> np.ndarray:
        """The estimate as (cx, cy, width, height)."""
        cx, cy, aspect, height = self.mean[:4]
        return np.array([cx, cy, aspect * max(height, 0.0), max(height, 0.0)])


def measurement(box: np.ndarray) -> np.ndarray:
    """(cx, cy, width, height) as the filter measures it: (cx, cy, aspect, height)."""
    cx, cy, width, height = box
    return np.array([cx, cy, width / height if height > 0 else 0.0, height])
