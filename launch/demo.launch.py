r"""Try SOSMaskFuse with no cameras: synthetic cameras, the fusion node and optionally RViz.

  ros2 launch sosmaskfuse_ros demo.launch.py [rviz:=true] \
      [autoencoder_weights:=CKPT] [sosnet_weights:=CKPT]

The node is the one of sosmaskfuse.launch.py on its defaults (on a CPU the lite autoencoder,
which fuses the cameras' 320x256 at their 10 Hz; `make demo` measures it), with
output_scaling clip (no frame-to-frame stretch flicker). The camera topics are the node's own
relative names, so everything lands in `namespace` (the cameras' visible/camera_info included,
which the node turns into camera_info for the fused image). `fastdds_profile` gives both nodes'
processes a Fast DDS profile (their own environment, nothing else's), e.g.
config/fastdds_large_images.xml. The fusion node is a lifecycle node; mask_source, preset and
the weights override `params_file` only when given.
"""

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription
from sosmaskfuse_ros.launch_arguments import OVERRIDES, given_overrides, setting_argument

#: The node settings the demo offers as arguments (device: the demo's own default, cpu).
DEMO_OVERRIDES = tuple(name for name in OVERRIDES if name not in ("device", "autostart"))


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


def _nodes(context):
    """The synthetic cameras and the fusion node, the profile in their own environment."""
    namespace = LaunchConfiguration("namespace")
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    profile = LaunchConfiguration("fastdds_profile").perform(context)
    env = {"FASTRTPS_DEFAULT_PROFILES_FILE": profile} if profile else None
    given = given_overrides(context.launch_configurations, DEMO_OVERRIDES)
    return [
        Node(
            package="sosmaskfuse_ros",
            executable="synthetic_cameras",
            name="synthetic_cameras",
            namespace=namespace,
            output="screen",
            additional_env=env,
            parameters=[{"use_sim_time": use_sim_time, "thermal_scale": 0.5, "rate": 10.0}],
        ),
        LifecycleNode(
            package="sosmaskfuse_ros",
            executable="sosmaskfuse_node",
            name="sosmaskfuse",
            namespace=namespace,
            output="screen",
            additional_env=env,
            parameters=[
                LaunchConfiguration("params_file"),
                {"output_scaling": "clip"},
                {
                    "use_sim_time": use_sim_time,
                    "device": ParameterValue(LaunchConfiguration("device"), value_type=str),
                    **given,
                },
            ],
        ),
    ]


def generate_launch_description():
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
            *[DeclareLaunchArgument(name, **setting_argument(name)) for name in DEMO_OVERRIDES],
            DeclareLaunchArgument(
                "fastdds_profile",
                default_value="",
                description="Fast DDS XML profile for both nodes' processes "
                "(FASTRTPS_DEFAULT_PROFILES_FILE), e.g. <share>/config/fastdds_large_images.xml; "
                "empty: the environment's",
            ),
            DeclareLaunchArgument(
                "rviz",
                default_value="false",
                choices=["true", "false"],
                description="also start rviz2 with config/sosmaskfuse.rviz "
                "(if rviz2 is installed)",
            ),
            OpaqueFunction(function=_nodes),
            OpaqueFunction(function=_rviz, condition=IfCondition(LaunchConfiguration("rviz"))),
        ]
    )
