"""The fusion node's parameters after declaration: when each may change, checked, then applied.

* A start-up parameter (not `live` in the table) may be set only while the node is
  unconfigured; configure reads it. Set while inactive or active it is refused with the reason
  and the way to do it (deactivate, cleanup, set, configure). While unconfigured each value is
  checked alone (a pair such as process_width/height is checked at configure).
* A live parameter is checked against the running stage (`builder.LiveSettings`) and applied
  between two pairs. The homography is live: it is also checked against the cameras seen so
  far, and a new one starts a new alignment history (`alignment_status`); `ros2 param load`
  of a calibration file sets it as `ros2 param set` does.
* `configured` holds the values the node was configured with; `configure_values` reads them
  from the parameters with the preset applied (a value other than the default counts as the
  user's own: the shipped parameter file lists every default), and `show_preset` writes what
  the preset changed back to the parameters, so that get_parameters says what runs.
"""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from sosmaskfuse_core.pipeline import builder
from sosmaskfuse_core.pipeline.frames import parse_homography
from sosmaskfuse_core.settings import table
from sosmaskfuse_core.thermal.agc import ThermalAGC

from . import params

NAMES = frozenset(s.name for s in params.node_settings())


class NodeParameters:
    """The parameter callbacks and values of one fusion node (`node.parameters`)."""

    def __init__(self, node) -> None:
        self.node = node
        self.declare_errors = params.declare_parameters(node, params.node_settings())
        self.configured: dict[str, Any] = {}  # the values the node was configured with
        self._showing = False  # show_preset is writing the values configure read
        node.add_on_set_parameters_callback(self.validate)
        node.add_post_set_parameters_callback(self.apply)

    def start_value(self, name: str) -> Any:
        """A parameter's value as the table holds it, or the default if it is refused."""
        setting = table.by_name(name)
        try:
            return params.to_setting(setting, self.node.get_parameter(name).value)
        except (ValueError, ParameterUninitializedException):  # refused, or an unset list
            return setting.default

    def configure_values(self) -> dict[str, Any]:
        """Every setting from the parameters, the preset applied, checked (ValueError)."""
        if self.declare_errors:
            raise ValueError("; ".join(f"{k}: {v}" for k, v in self.declare_errors.items()))
        values = params.read_values(self.node, params.node_settings())
        given = {name for name, value in values.items() if value != table.default(name)}
        return table.check_values(table.apply_preset(values, given))

    def show_preset(self, values: dict[str, Any]) -> None:
        """The parameters a preset changed take the values that run."""
        changed = [
            Parameter(name, value=value)
            for name, value in values.items()
            if name != "preset" and value != self.start_value(name)
        ]
        if changed:
            self._showing = True  # start-up values too: they are what configure just read
            try:
                self.node.set_parameters(changed)
            finally:
                self._showing = False
            said = ", ".join(f"{p.name}={p.value!r}" for p in changed)
            self.node.get_logger().info(f"preset {values['preset']}: {said}")

    def _current(self) -> dict:
        """The configured settings; before configure, each parameter's value or its default."""
        if self.configured:
            return dict(self.configured)
        return {s.name: self.start_value(s.name) for s in params.node_settings()}

    def _with(self, changes: list[Parameter]) -> dict:
        """The node's settings with `changes` merged in, as the table holds them (ValueError)."""
        values = self._current()
        for change in changes:
            if change.name in values:
                values[change.name] = params.check_change(table.by_name(change.name), change)
        return values

    def validate(self, changes: list[Parameter]) -> SetParametersResult:
        changes = [c for c in changes if c.name in NAMES]  # not qos_overrides.*
        if not changes:
            return SetParametersResult(successful=True)
        node = self.node
        start_up = [c.name for c in changes if not table.by_name(c.name).live]
        if start_up and node.state != "unconfigured" and not self._showing:
            how = "deactivate, then cleanup" if node.state == "active" else "cleanup"
            return SetParametersResult(
                successful=False,
                reason=f"{', '.join(start_up)}: start-up parameter, set only while the node "
                f"is unconfigured (it is {node.state}; configure reads it): ros2 lifecycle set "
                f"{node.get_fully_qualified_name()} {how}",
            )
        try:
            values = self._with(changes)
            if node.stage is not None:
                homography = builder.LiveSettings.check(node.stage, values).homography
            else:  # each value alone; combinations of start-up values are checked at configure
                ThermalAGC.from_settings(values)
                homography = parse_homography(values["homography"])
            node.cameras.homography(homography)  # against the cameras seen so far
        except (ValueError, TypeError, KeyError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def apply(self, changes: list[Parameter]) -> None:
        changes = [c for c in changes if c.name in NAMES]
        if not changes:
            return
        values = self._with(changes)
        stage = self.node.stage
        if stage is not None:  # applied between two pairs (the pipeline's own lock)
            homography = stage.preparer.homography
            builder.LiveSettings.check(stage, values).apply(stage)
            self.configured = values
            self.node.alignment.configure(values)
            if stage.preparer.homography is not homography:  # a new registration
                self.node.alignment.reset(stage.preparer.homography)
        for change in changes:
            self.declare_errors.pop(change.name, None)
        self.node.get_logger().info(
            "parameters set: " + ", ".join(f"{c.name}={c.value!r}" for c in changes)
        )
