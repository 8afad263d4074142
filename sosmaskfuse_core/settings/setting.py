"""What one setting is: name, kind, default, range, choices or pattern, scope, and its check.

`sosmaskfuse_core.settings.table` lists the settings; this module says what each entry holds
and how a value is checked against it (the same check for node parameters, command-line
options and YAML values). Plain Python: no torch, no ROS.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

#: Where a setting applies: the ROS node, `sosmaskfuse bag`, `sosmaskfuse fuse`.
NODE, BAG, FUSE = "node", "bag", "fuse"
EVERYWHERE = frozenset({NODE, BAG, FUSE})
LIVE_STREAMS = frozenset({NODE, BAG})  # settings about camera streams (16-bit counts, pairing)

#: The kinds a setting can have; `optional_float` is a number or unset (None), `floats` a list.
KINDS = ("str", "bool", "int", "float", "optional_float", "floats")

#: Groups in the order they are listed (YAML sections, --help groups), each with its title.
GROUPS = {
    "preset": "preset",
    "models": "models",
    "fusion": "fusion",
    "geometry": "processing size",
    "registration": "registration",
    "agc": "thermal gain control for 16-bit counts",
    "inputs": "inputs",
    "outputs": "outputs",
    "reporting": "reporting",
    "lifecycle": "lifecycle",
    # the synthetic_cameras node's own settings (sosmaskfuse_ros)
    "synthetic": "synthetic cameras",
}


@dataclass(frozen=True)
class Setting:
    """One setting. `check` is the validation every front end applies."""

    name: str
    kind: str
    default: Any
    description: str
    group: str
    choices: tuple[str, ...] = ()
    range: tuple[float, float] | None = None  # inclusive bounds
    open_range: bool = False  # the bounds themselves are excluded
    open_low: bool = False  # only the lower bound is excluded (e.g. a slop that must be > 0)
    length: int | None = None  # for `floats`: the number of values
    pattern: str = ""  # for `str`: a regular expression the whole value must match
    pattern_text: str = ""  # the pattern in words, for error messages
    live: bool = False  # may change while the node runs
    scopes: frozenset[str] = EVERYWHERE
    flag: str | None = None  # command-line option, when it is not --name-with-dashes
    aliases: tuple[str, ...] = ()  # further command-line spellings kept for compatibility
    #: (scope, default) pairs where a front end's default differs from `default` (the node's)
    scope_defaults: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.group not in GROUPS:
            raise ValueError(
                f"setting {self.name}: group {self.group!r} is not one of {tuple(GROUPS)}"
            )
        if self.default is not None:
            self.check(self.default)
        for scope, value in self.scope_defaults:
            if scope not in self.scopes:
                raise ValueError(f"setting {self.name}: a default for {scope!r}, not its scope")
            if value is not None:
                self.check(value)

    def default_in(self, scope: str) -> Any:
        """The default in one front end (`node`, `bag`, `fuse`): `default` unless overridden."""
        return dict(self.scope_defaults).get(scope, self.default)

    @property
    def option(self) -> str:
        """The command-line option: `flag`, or the name with dashes."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def range_text(self) -> str:
        """The range as a mathematician writes it: `[0, 1]`, `(0, 10]`, `(0, 1)`."""
        if self.range is None:
            return ""
        lo, hi = self.range
        left = "(" if self.open_range or self.open_low else "["
        right = ")" if self.open_range else "]"

        def text(v: float) -> str:
            return str(v) if isinstance(v, int) else f"{v:g}"

        return f"{left}{text(lo)}, {text(hi)}{right}"

    def parse(self, value: Any) -> Any:
        """`value` as this setting holds it, then checked.

        For `optional_float`, "" (how a ROS parameter or YAML file says "unset") is None and a
        numeric string is its number; for `floats`, an empty list (likewise) is None.
        """
        if self.kind == "floats" and value is not None and len(value) == 0:
            return None
        if self.kind == "optional_float":
            if value is None or (isinstance(value, str) and not value.strip()):
                return None
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise ValueError(
                        f"{self.name}: {value!r} is not a number (empty = unset)"
                    ) from None
            elif isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
        return self.check(value)

    def check(self, value: Any) -> Any:
        """`value` if valid for this setting, else ValueError naming the setting and the rule."""
        if value is None:
            if self.kind in ("optional_float", "floats"):
                return None
            raise ValueError(f"{self.name}: a value is required")
        if self.kind == "str":
            if not isinstance(value, str):
                raise ValueError(f"{self.name}: expected a string, got {value!r}")
            if self.choices and value not in self.choices:
                raise ValueError(f"{self.name}: {value!r} is not one of {', '.join(self.choices)}")
            if self.pattern and not re.fullmatch(self.pattern, value):
                raise ValueError(
                    f"{self.name}: {value!r} is not {self.pattern_text or self.pattern}"
                )
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{self.name}: expected true or false, got {value!r}")
            return value
        if self.kind == "floats":
            values = list(value)
            if self.length is not None and len(values) != self.length:
                raise ValueError(f"{self.name}: expected {self.length} numbers, got {len(values)}")
            for v in values:
                self._check_number(v)
            return value
        return self._check_number(value)

    def _check_number(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{self.name}: expected a number, got {value!r}")
        if self.kind == "int" and not isinstance(value, int):
            raise ValueError(f"{self.name}: expected an integer, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{self.name}: {value} is not a finite number")
        if self.range is not None:
            lo, hi = self.range
            above = lo < value if self.open_range or self.open_low else lo <= value
            below = value < hi if self.open_range else value <= hi
            if not (above and below):
                raise ValueError(f"{self.name}: {value} is outside {self.range_text}")
        return value
