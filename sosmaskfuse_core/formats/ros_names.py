"""ROS 2 topic names, checked by the rules of rmw's `rmw_validate_full_topic_name`.

The bag tools write topic names into bags (`make-bag --thermal-topic`, `bag --output-namespace`)
that `ros2 bag play` and our player later hand to rclpy, which refuses an invalid one at the
first publisher it creates, long after the bag was made. `check_topic_name` refuses it before
anything is written. Written here because rclpy (`rclpy.validate_topic_name`) is not a
dependency of the core package; the rules are rmw's, for fully qualified names:

* it starts with ``/`` and does not end with one (``/`` alone is no topic);
* it holds only ASCII letters, digits, ``_`` and ``/``; no ``//``;
* no token (the text between slashes) starts with a digit;
* at most 247 characters (`RMW_TOPIC_MAX_NAME_LENGTH`, 255 less DDS's ``rt/`` prefix room).
"""

from __future__ import annotations

import re

#: rmw's RMW_TOPIC_MAX_NAME_LENGTH.
MAX_TOPIC_LENGTH = 247
_ALLOWED = re.compile(r"[A-Za-z0-9_/]")


def topic_name_problem(name: str) -> str | None:
    """Why `name` is not a valid fully qualified ROS 2 topic name; None if it is one."""
    if not name:
        return "it is empty"
    if not name.startswith("/"):
        return "it does not start with '/' (bag topics are fully qualified)"
    if name.endswith("/"):
        return "it ends with '/'"
    for index, char in enumerate(name):
        if not _ALLOWED.fullmatch(char):
            return (
                f"character {char!r} at index {index} is not allowed "
                "(only ASCII letters, digits, '_' and '/')"
            )
    if "//" in name:
        return f"it has an empty token ('//' at index {name.index('//')})"
    for token in name.split("/")[1:]:
        if token[0].isdigit():
            return f"token {token!r} starts with a digit"
    if len(name) > MAX_TOPIC_LENGTH:
        return f"it is {len(name)} characters long, more than {MAX_TOPIC_LENGTH}"
    return None


def check_topic_name(name: str, what: str = "topic") -> str:
    """`name` if it is a valid fully qualified ROS 2 topic name; ValueError saying why not."""
    problem = topic_name_problem(name)
    if problem is not None:
        raise ValueError(f"{what} {name!r} is not a valid ROS 2 topic name: {problem}")
    return name
