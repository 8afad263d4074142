r"""Launch the SOSMaskFuse fusion node (a lifecycle node) on a thermal and a visible camera topic.

  ros2 launch sosmaskfuse_ros sosmaskfuse.launch.py \
      thermal_topic:=/flir/image_raw visible_topic:=/rgb/image_raw

Parameters come from `params_file` (default: the installed config/sosmaskfuse.yaml); the
arguments use_sim_time, preset, device, mask_source, autoencoder_weights, sosnet_weights and
autostart override it only when they are given (left empty, the file's value stands). The
visible camera's camera_info is read next to `visible_topic` (/rgb/image_raw ->
/rgb/camera_info). Outputs: <namespace>/fused_image, <namespace>/camera_info,
<namespace>/sos_mask, /diagnostics. `respawn:=true` starts the node again if it exits;
`fastdds_profile` gives the node's own process a Fast DDS profile
(FASTRTPS_DEFAULT_PROFILES_FILE), e.g. the shipped config/fastdds_large_images.xml, without
touching the environment of anything else a including launch file starts.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import LifecycleNode
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from sosmaskfuse_ros.launch_arguments import (
    OVERRIDES,
    ROS_BOOLS,
    given_overrides,
    setting_argument,
)


def _fusion_node(context):
    """The node, with the arguments that were given and the profile in its own environment."""
    thermal_topic, visible_topic = (
        LaunchConfiguration("thermal_topic"),
        LaunchConfiguration("visible_topic"),
    )
    profile = LaunchConfiguration("fastdds_profile").perform(context)
    given = given_overrides(context.launch_configurations, OVERRIDES + ROS_BOOLS)
    return [
        LifecycleNode(
            package="sosmaskfuse_ros",
            executable="sosmaskfuse_node",
            name="sosmaskfuse",
            namespace=LaunchConfiguration("namespace"),
            output="screen",
            respawn=LaunchConfiguration("respawn"),
            respawn_delay=float(LaunchConfiguration("respawn_delay").perform(context)),
            additional_env={"FASTRTPS_DEFAULT_PROFILES_FILE": profile} if profile else None,
            parameters=[LaunchConfiguration("params_file"), *([given] if given else [])],
            remappings=[
                ("thermal/image_raw", thermal_topic),
                ("visible/image_raw", visible_topic),
                ("thermal/image_raw/compressed", [thermal_topic, "/compressed"]),
                ("visible/image_raw/compressed", [visible_topic, "/compressed"]),
                (  # image_transport's rule: camera_info beside the image topic
                    "visible/camera_info",
                    PythonExpression(
                        ["'/'.join('", visible_topic, "'.split('/')[:-1] + ['camera_info'])"]
                    ),
                ),
            ],
        )
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "thermal_topic",
                default_value="/thermal/image_raw",
                description="thermal camera sensor_msgs/Image topic (mono8, mono16, 16UC1, 32FC1)",
            ),
            DeclareLaunchArgument(
                "visible_topic",
                default_value="/visible/image_raw",
                description="visible camera sensor_msgs/Image topic (rgb8, bgr8, mono8, bayer, "
                "yuv422, ...); its camera_info is read beside it",
            ),
            DeclareLaunchArgument(
                "params_file",
                description="node parameters (YAML)",
                default_value=PathJoinSubstitution(
                    [FindPackageShare("sosmaskfuse_ros"), "config", "sosmaskfuse.yaml"]
                ),
            ),
            DeclareLaunchArgument(
                "namespace",
                default_value="",
                description="namespace of the node and of its fused_image and sos_mask outputs",
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="",
                choices=["", "true", "false"],
                description="stamp diagnostics and time timers with /clock (empty: the "
                "params_file's value, else false)",
            ),
            *[DeclareLaunchArgument(name, **setting_argument(name)) for name in OVERRIDES],
            DeclareLaunchArgument(
                "respawn",
                default_value="false",
                choices=["true", "false"],
                description="start the node again when its process exits (it stays up "
                "unconfigured when a start-up value is wrong: fix it with ros2 param set)",
            ),
            DeclareLaunchArgument(
                "respawn_delay",
                default_value="2.0",
                description="seconds before a respawn",
            ),
            DeclareLaunchArgument(
                "fastdds_profile",
                default_value="",
                description="Fast DDS XML profile for the node's process "
                "(FASTRTPS_DEFAULT_PROFILES_FILE), e.g. "
                "<share>/config/fastdds_large_images.xml; empty: the environment's",
            ),
            OpaqueFunction(function=_fusion_node),
        ]
    )
