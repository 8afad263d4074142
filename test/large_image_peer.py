"""A stand-alone publisher of camera-sized rgb8 frames, for the Fast DDS profile test.

    python large_image_peer.py TOPIC COUNT [WIDTH HEIGHT]

Publishes COUNT frames best effort (REP-2003 sensor data) at 10 Hz once a subscriber has
matched, stamped 1..COUNT s, then prints "published COUNT". Run as its own process so that
FASTRTPS_DEFAULT_PROFILES_FILE applies to its DDS participant from the start.
"""

from __future__ import annotations

import array
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image


def main() -> int:
    topic, count = sys.argv[1], int(sys.argv[2])
    width, height = (int(v) for v in sys.argv[3:5]) if len(sys.argv) > 4 else (1280, 1024)
    rclpy.init()
    node = Node("large_image_peer")
    pub = node.create_publisher(Image, topic, qos_profile_sensor_data)
    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if pub.get_subscription_count() == 0:
        print("no subscriber", flush=True)
        return 1
    time.sleep(1.0)  # let the subscriber's side of the match settle as well
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    pixels = np.random.default_rng(0).integers(0, 256, width * height * 3, dtype=np.uint8)
    msg.data = array.array("B", pixels.tobytes())
    for k in range(1, count + 1):
        msg.header.stamp.sec = k
        pub.publish(msg)
        time.sleep(0.1)
    time.sleep(0.5)
    print(f"published {count}", flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
