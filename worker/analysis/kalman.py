"""A constant-velocity Kalman filter over a box's centre x, centre y, aspect (width / height) and height.

The state and noise model of SORT and ByteTrack (Bewley et al. 2016, Zhang et al. 2022): position
and velocity noise proportional to the box's height, so a near box may move more than a far one,
and an aspect that changes slowly. One step is one analysed frame.

Each of the four quantities moves with its own velocity and is measured alone, and every noise is
diagonal, so the 8x8 covariance stays four independent 2x2 blocks (value, velocity): the filter
keeps those blocks and updates them in closed form, the same estimate as the full matrices without
an 8x8 product or a matrix inverse per box and frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Uncertainty of a position, of its change per step, and of a measured position, as shares of the height.
POSITION_NOISE = 1 / 20
VELOCITY_NOISE = 1 / 160
MEASUREMENT_NOISE = 1 / 20
# The aspect's own noise: a person's outline changes shape slowly.
ASPECT_NOISE, ASPECT_VELOCITY_NOISE, ASPECT_MEASUREMENT_NOISE = 1e-2, 1e-5, 1e-1


def _by_height(height: float, share: float, aspect: float) -> np.ndarray:
    """Standard deviations for (cx, cy, aspect, height)."""
    return np.array([share * height, share * height, aspect, share * height])


@dataclasses.dataclass
class BoxFilter:
    """One box's estimate: values (cx, cy, aspect, height), their velocities per step, and for each
    quantity the variance of its value, of its velocity and their covariance."""

    value: np.ndarray
    velocity: np.ndarray
    value_variance: np.ndarray
    covariance: np.ndarray
    velocity_variance: np.ndarray

    @classmethod
    def start(cls, measured: np.ndarray) -> BoxFilter:
        """A filter at `measured` (cx, cy, aspect, height), at rest but with an uncertain velocity."""
        height = measured[3]
        return cls(measured.astype(float), np.zeros(4), np.square(_by_height(height, 2 * POSITION_NOISE, ASPECT_NOISE)),
                   np.zeros(4), np.square(_by_height(height, 10 * VELOCITY_NOISE, ASPECT_VELOCITY_NOISE)))

    def copy(self) -> BoxFilter:
        return BoxFilter(self.value.copy(), self.velocity.copy(), self.value_variance.copy(), self.covariance.copy(),
                         self.velocity_variance.copy())

    def predict(self, keep_size: bool = False) -> None:
        """One step ahead. `keep_size`: the aspect and height stay as they are (a box not seen for a
        while must not grow or shrink on a velocity measured before the gap)."""
        if keep_size:
            self.velocity[2:] = 0.0
        height = self.value[3]
        self.value = self.value + self.velocity
        self.value_variance = (self.value_variance + 2 * self.covariance + self.velocity_variance
                               + np.square(_by_height(height, POSITION_NOISE, ASPECT_NOISE)))
        self.covariance = self.covariance + self.velocity_variance
        self.velocity_variance = self.velocity_variance + np.square(
            _by_height(height, VELOCITY_NOISE, ASPECT_VELOCITY_NOISE))

    def update(self, measured: np.ndarray) -> None:
        """Corrects the estimate with a measured (cx, cy, aspect, height)."""
        innovation_variance = self.value_variance + np.square(
            _by_height(self.value[3], MEASUREMENT_NOISE, ASPECT_MEASUREMENT_NOISE))
        value_gain = self.value_variance / innovation_variance
        velocity_gain = self.covariance / innovation_variance
        innovation = measured - self.value
        self.value = self.value + value_gain * innovation
        self.velocity = self.velocity + velocity_gain * innovation
        self.velocity_variance = self.velocity_variance - velocity_gain * self.covariance
        self.value_variance = (1 - value_gain) * self.value_variance
        self.covariance = (1 - value_gain) * self.covariance

    def box(self) -> np.ndarray:
        """The estimate as (cx, cy, width, height)."""
        cx, cy, aspect, height = self.value
        height = max(height, 0.0)
        return np.array([cx, cy, aspect * height, height])


def measurement(box: np.ndarray) -> np.ndarray:
    """(cx, cy, width, height) as the filter measures it: (cx, cy, aspect, height)."""
    cx, cy, width, height = box
    return np.array([cx, cy, width / height if height > 0 else 0.0, height])
