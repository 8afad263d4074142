r"""Launch the SOSMaskFuse fusion node on a thermal and a visible camera topic.

  ros2 launch sosmaskfuse_ros sosmaskfuse.launch.py \
      thermal_topic:=/flir/image_raw visible_topic:=/rgb/image_raw

Parameters come from `params_file` (default: the installed config/sosmaskfuse.yaml); the
arguments use_sim_time, device, mask_source, autoencoder_weights, sosnet_weights and autostart
override it. The visible camera's camera_info is read next to `visible_topic`
(/rgb/image_raw -> /rgb/camera_info). Outputs: <namespace>/fused_image, <namespace>/camera_info,
<namespace>/sos_mask, /diagnostics. `fastdds_profile` points FASTRTPS_DEFAULT_PROFILES_FILE at a
Fast DDS profile, e.g. the shipped config/fastdds_large_images.xml for camera-sized images on
best-effort topics.
"""

from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from sosmaskfuse_ros.launch_arguments import setting_argument


def generate_launch_description():
    thermal_topic, visible_topic = (
        LaunchConfiguration("thermal_topic"),
        LaunchConfiguration("visible_topic"),
    )
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
                default_value="false",
                choices=["true", "false"],
                description="stamp diagnostics and time timers with /clock",
            ),
            DeclareLaunchArgument("device", **setting_argument("device")),
            DeclareLaunchArgument("mask_source", **setting_argument("mask_source")),
            DeclareLaunchArgument(
                "autoencoder_weights", **setting_argument("autoencoder_weights")
            ),
            DeclareLaunchArgument("sosnet_weights", **setting_argument("sosnet_weights")),
            DeclareLaunchArgument("autostart", **setting_argument("autostart")),
            DeclareLaunchArgument(
                "fastdds_profile",
                default_value="",
                description="Fast DDS XML profile for the node (FASTRTPS_DEFAULT_PROFILES_FILE), "
                "e.g. <share>/config/fastdds_large_images.xml; empty: the environment's",
            ),
            SetEnvironmentVariable(
                "FASTRTPS_DEFAULT_PROFILES_FILE",
                LaunchConfiguration("fastdds_profile"),
                condition=IfCondition(
                    PythonExpression(["'", LaunchConfiguration("fastdds_profile"), "' != ''"])
                ),
            ),
            Node(
                package="sosmaskfuse_ros",
                executable="sosmaskfuse_node",
                name="sosmaskfuse",
                namespace=LaunchConfiguration("namespace"),
                output="screen",
                parameters=[
                    LaunchConfiguration("params_file"),
                    {
                        "use_sim_time": ParameterValue(
                            LaunchConfiguration("use_sim_time"), value_type=bool
                        ),
                        "device": ParameterValue(LaunchConfiguration("device"), value_type=str),
                        "mask_source": ParameterValue(
                            LaunchConfiguration("mask_source"), value_type=str
                        ),
                        "autoencoder_weights": ParameterValue(
                            LaunchConfiguration("autoencoder_weights"), value_type=str
                        ),
                        "sosnet_weights": ParameterValue(
                            LaunchConfiguration("sosnet_weights"), value_type=str
                        ),
                        "autostart": ParameterValue(
                            LaunchConfiguration("autostart"), value_type=bool
                        ),
                    },
                ],
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
            ),
        ]
    )
