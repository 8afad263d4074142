r"""Try SOSMaskFuse with no cameras: synthetic cameras, the fusion node and optionally RViz.

  ros2 launch sosmaskfuse_ros demo.launch.py [rviz:=true] \
      [autoencoder_weights:=CKPT] [sosnet_weights:=CKPT]

The node is the one of sosmaskfuse.launch.py with CPU-friendly settings: fusion at 160x128
(the IMV-F autoencoder costs about 50 GFLOP a frame there, 200 at the cameras' 320x256) and
output_scaling clip (no frame-to-frame flicker). The camera topics are the node's own relative
names, so everything lands in `namespace` (the cameras' visible/camera_info included, which the
node turns into camera_info for the fused image). `fastdds_profile` applies a Fast DDS profile to
both nodes, e.g. config/fastdds_large_images.xml.
"""

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from sosmaskfuse_ros.launch_arguments import setting_argument


def _rviz(context):
    """RViz with our config, or a note when rviz2 is not installed."""
    try:
        get_package_share_directory("rviz2")
    except PackageNotFoundError:
        return [
            LogInfo(
                msg="rviz:=true, but rviz2 is not installed: "
                "watch /fused_image with another viewer"
            )
        ]
    config = PathJoinSubstitution(
        [FindPackageShare("sosmaskfuse_ros"), "config", "sosmaskfuse.rviz"]
    )
    return [
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", config],
            output="screen",
            parameters=[
                {
                    "use_sim_time": ParameterValue(
                        LaunchConfiguration("use_sim_time"), value_type=bool
                    )
                }
            ],
        )
    ]


def generate_launch_description():
    namespace = LaunchConfiguration("namespace")
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params_file",
                description="fusion node parameters (YAML)",
                default_value=PathJoinSubstitution(
                    [FindPackageShare("sosmaskfuse_ros"), "config", "sosmaskfuse.yaml"]
                ),
            ),
            DeclareLaunchArgument(
                "namespace",
                default_value="",
                description="namespace of both nodes and their topics",
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                choices=["true", "false"],
                description="stamp and time everything with /clock",
            ),
            DeclareLaunchArgument("device", **setting_argument("device", default="cpu")),
            DeclareLaunchArgument("mask_source", **setting_argument("mask_source")),
            DeclareLaunchArgument(
                "autoencoder_weights", **setting_argument("autoencoder_weights")
            ),
            DeclareLaunchArgument("sosnet_weights", **setting_argument("sosnet_weights")),
            DeclareLaunchArgument(
                "fastdds_profile",
                default_value="",
                description="Fast DDS XML profile for both nodes "
                "(FASTRTPS_DEFAULT_PROFILES_FILE), e.g. <share>/config/fastdds_large_images.xml; "
                "empty: the environment's",
            ),
            SetEnvironmentVariable(
                "FASTRTPS_DEFAULT_PROFILES_FILE",
                LaunchConfiguration("fastdds_profile"),
                condition=IfCondition(
                    PythonExpression(["'", LaunchConfiguration("fastdds_profile"), "' != ''"])
                ),
            ),
            DeclareLaunchArgument(
                "rviz",
                default_value="false",
                choices=["true", "false"],
                description="also start rviz2 with config/sosmaskfuse.rviz "
                "(if rviz2 is installed)",
            ),
            Node(
                package="sosmaskfuse_ros",
                executable="synthetic_cameras",
                name="synthetic_cameras",
                namespace=namespace,
                output="screen",
                parameters=[{"use_sim_time": use_sim_time, "thermal_scale": 0.5, "rate": 10.0}],
            ),
            Node(
                package="sosmaskfuse_ros",
                executable="sosmaskfuse_node",
                name="sosmaskfuse",
                namespace=namespace,
                output="screen",
                parameters=[
                    LaunchConfiguration("params_file"),
                    {
                        "process_width": 160,
                        "process_height": 128,
                        "output_scaling": "clip",
                    },
                    {
                        "use_sim_time": use_sim_time,
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
                    },
                ],
            ),
            OpaqueFunction(function=_rviz, condition=IfCondition(LaunchConfiguration("rviz"))),
        ]
    )
