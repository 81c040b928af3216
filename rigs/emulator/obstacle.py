"""The bench's obstacle: a padded load cell that a slide (SIO-1 coil 4) puts in the path
of the caudal section at the bench's obstacle angle.

Why its own model: the obstacle is bench equipment, not part of the table, yet the
table's drive feels it (the section pressing on it is load at the foot end, which is
what the obstruction interlock watches) and a reference gauge reads it (the force on
the obstacle, which the obstruction test judges). Both read the same contact law here:
a stiff padded spring, force = stiffness x how far the section has pressed past the
obstacle angle, while the slide is in.
"""

from __future__ import annotations

import bisect

import numpy as np

#: Default obstacle angle (degrees, flexion axis), as the brief fixes for `--obstacle-angle`.
DEFAULT_OBSTACLE_ANGLE_DEG = 10.0


class Obstacle:
    """The slide's position over table time and the contact law on one axis."""

    def __init__(self, angle_deg: float = DEFAULT_OBSTACLE_ANGLE_DEG, stiffness_n_per_deg: float = 50.0,
                 axis: int = 0) -> None:
        self.angle_deg = float(angle_deg)
        self.stiffness = float(stiffness_n_per_deg)
        self.axis = axis
        self._changes_t: list[float] = [0.0]  # when the slide moved
        self._changes_in: list[bool] = [False]

    @property
    def inserted(self) -> bool:
        return self._changes_in[-1]

    def set(self, t: float, inserted: bool) -> None:
        if inserted != self.inserted:
            self._changes_t.append(t)
            self._changes_in.append(inserted)

    def inserted_at(self, t: float) -> bool:
        return self._changes_in[max(0, bisect.bisect_right(self._changes_t, t) - 1)]

    def trip_angle(self, threshold_n: float) -> float:
        """The angle at which the contact force exceeds `threshold_n`."""
        return self.angle_deg + threshold_n / self.stiffness

    def contact_n(self, angle_deg: float, t: float) -> float:
        if not self.inserted_at(t):
            return 0.0
        return self.stiffness * max(0.0, angle_deg - self.angle_deg)

    def contact_at(self, times: np.ndarray, angles: np.ndarray) -> np.ndarray:
        """Contact force (N) at table `times` for the section's true `angles` (n, 2)."""
        idx = np.searchsorted(np.asarray(self._changes_t), times, side="right") - 1
        inserted = np.asarray(self._changes_in)[np.clip(idx, 0, None)]
        press = np.maximum(0.0, angles[:, self.axis] - self.angle_deg)
        return np.where(inserted, self.stiffness * press, 0.0)
