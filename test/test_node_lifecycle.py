"""The fusion node as a managed node, on real DDS: lifecycle services, start-up checks, parameters.

The lifecycle is driven through `<node>/change_state` and read through `<node>/get_state` with
service clients, as a lifecycle manager would; start-up values that cannot work leave the node
up and unconfigured with the reason (and ERROR in /diagnostics); parameters are never undeclared
or retyped; QoS comes from rclpy's qos_overrides parameters.
"""

from __future__ import annotations

import re

import pytest

rclpy = pytest.importorskip(
    "rclpy", reason="rclpy (ROS 2 Jazzy wheels or a native install) is not importable"
)

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from node_rig import SEC, Rig, Store  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import ReliabilityPolicy  # noqa: E402
from ros_helpers import wait_for  # noqa: E402

from sosmaskfuse_ros.fusion_node import FusionNode  # noqa: E402
from sosmaskfuse_ros.params import node_settings  # noqa: E402

_count = iter(range(1000))


def _call(node: Node, client, request, timeout: float = 20.0):
    assert client.wait_for_service(timeout_sec=10.0), f"no service {client.srv_name}"
    future = client.call_async(request)
    assert wait_for(future.done, timeout), f"{client.srv_name} did not answer"
    return future.result()


class Manager:
    """What a lifecycle manager does: change_state and get_state on the node's services."""

    def __init__(self, tester: Node, node_fqn: str) -> None:
        self.tester = tester
        self.change = tester.create_client(ChangeState, f"{node_fqn}/change_state")
        self.get = tester.create_client(GetState, f"{node_fqn}/get_state")

    def state(self) -> str:
        return _call(self.tester, self.get, GetState.Request()).current_state.label

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return _call(self.tester, self.change, request).success


def test_lifecycle_over_the_services_and_no_output_unless_active(rig):
    r = rig(autostart=False, wait_subscribed=False)
    m = Manager(r.tester, r.node.get_fully_qualified_name())
    assert m.state() == "unconfigured" and r.node.stage is None
    assert r.pub["thermal"].get_subscription_count() == 0  # not subscribed before active

    assert m.transition(Transition.TRANSITION_CONFIGURE)
    assert m.state() == "inactive" and r.node.stage is not None  # models loaded
    assert r.pub["thermal"].get_subscription_count() == 0

    assert m.transition(Transition.TRANSITION_ACTIVATE)
    assert m.state() == "active"
    r.wait_discovery()
    r.pair(1 * SEC)
    assert r.wait_outputs(1)

    assert m.transition(Transition.TRANSITION_DEACTIVATE)
    assert m.state() == "inactive" and r.node.stage is not None  # models stay loaded
    assert wait_for(lambda: r.pub["visible"].get_subscription_count() == 0)
    r.pair(2 * SEC)  # inactive: no output (the check is the [1, 3] below)

    assert m.transition(Transition.TRANSITION_CLEANUP)
    assert m.state() == "unconfigured" and r.node.stage is None  # models freed

    assert m.transition(Transition.TRANSITION_CONFIGURE)
    assert m.transition(Transition.TRANSITION_ACTIVATE)
    r.wait_discovery()
    r.pair(3 * SEC)
    assert r.wait_outputs(2)
    assert [m.header.stamp.sec for m in r.fused] == [1, 3]


def test_a_pair_in_flight_when_deactivated_is_not_published(rig):
    r = rig()
    original = r.node.pipeline.fuse_batch
    entered = Store()

    def held(*a, **k):
        entered(True)
        assert wait_for(lambda: not r.node._active, 20)
        return original(*a, **k)

    r.node.pipeline.fuse_batch = held
    r.pair(1 * SEC)
    assert entered.wait_count(1)
    assert r.node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert r.wait_received(1, 1)
    r.node.pipeline.fuse_batch = original
    assert r.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    r.wait_discovery()
    r.pair(2 * SEC)  # its output comes after the held pair's would have
    assert r.wait_outputs(1)
    assert [m.header.stamp.sec for m in r.fused] == [2]


@pytest.mark.parametrize(
    "overrides,text",
    [
        ({"input_transport": "bogus"}, "input_transport: 'bogus' is not one of raw, compressed"),
        ({"sync_slop": 0.0}, r"sync_slop: 0.0 is outside \(0, 10\]"),
        ({"process_width": 320}, "process_width and process_height go together"),
        ({"mask_source": "bogus"}, "mask_source: 'bogus' is not one of auto, ensemble, sosnet"),
        ({"device": "gpu0"}, "device: 'gpu0' is not auto, cpu, cuda or cuda:N"),
        ({"precision": "fp64"}, "precision: 'fp64' is not one of auto, fp32, fp16, bf16"),
        ({"mu": 1.5}, "mu: .*1.5"),  # outside the descriptor's range: refused by rclpy
        ({"sync_slop": 1}, "sync_slop: .*INTEGER"),  # the wrong type: refused by rclpy
        ({"input_min_rate": 50.0, "input_max_rate": 10.0}, "input_min_rate .* must be below"),
    ],
)
def test_start_up_values_that_cannot_work_leave_the_node_unconfigured_saying_why(
    session, tiny_checkpoint_files, overrides, text
):
    values = {"autoencoder_weights": tiny_checkpoint_files[0], "device": "cpu", **overrides}
    node = session.add(
        FusionNode(
            namespace=f"/bad{next(_count)}",
            context=session.context,
            parameter_overrides=[Parameter(k, value=v) for k, v in values.items()],
        )
    )
    try:
        assert node.state == "unconfigured" and node.stage is None
        assert re.search(text, node.report.config_error), node.report.config_error
        status = node.report.fusion_status(node.state, {})
        assert status.level == DiagnosticStatus.ERROR and "cannot configure" in status.message
        assert (
            node.trigger_configure() == TransitionCallbackReturn.FAILURE
        )  # and again, with the reason
    finally:
        session.remove(node)


def test_a_configure_failure_is_an_error_on_diagnostics(session, rig):
    r = rig(sync_slop=0.0, wait_subscribed=False)
    status = r.wait_status("fusion", lambda s: True)
    assert status.name == f"{r.ns}/sosmaskfuse: fusion"  # diagnostic_updater.use_fqn
    assert status.level == DiagnosticStatus.ERROR and "sync_slop" in status.message
    assert status.hardware_id == "none"  # no device while unconfigured


def test_descriptors_state_the_rules(rig):
    node = rig().node
    assert node.describe_parameter("device").additional_constraints == "auto, cpu, cuda or cuda:N"
    assert node.describe_parameter("sync_slop").additional_constraints == "in (0, 10]"
    start_up = node.describe_parameter("input_transport")
    assert not start_up.read_only and "start-up: set it while the node is unconfigured" in (
        start_up.description
    )
    assert not node.describe_parameter("mu").read_only


def test_parameters_cannot_be_undeclared_or_retyped(rig):
    r = rig()
    node = r.node
    deleted = node.set_parameters([Parameter("mask_threshold", Parameter.Type.NOT_SET)])[0]
    assert not deleted.successful and "mask_threshold cannot be undeclared" in deleted.reason
    assert node.has_parameter("mask_threshold")
    retyped = node.set_parameters([Parameter("mask_threshold", value=True)])[0]
    assert not retyped.successful and "not bool" in retyped.reason
    assert not node.set_parameters([Parameter("mu", value="high")])[0].successful
    assert not node.set_parameters([Parameter("mu", Parameter.Type.NOT_SET)])[0].successful
    # and the parameter still works afterwards
    assert node.set_parameters([Parameter("mask_threshold", value=0.5)])[0].successful
    assert node.pipeline.config.mask_threshold == 0.5
    assert node.set_parameters([Parameter("mask_threshold", value="")])[0].successful
    assert node.pipeline.config.mask_threshold is None
    r.pair(1 * SEC)
    assert r.wait_outputs(1)


def test_qos_defaults_and_overrides(rig):
    default = rig()
    ns = default.ns
    subs = default.tester.get_subscriptions_info_by_topic(f"{ns}/thermal/image_raw")
    pubs = default.tester.get_publishers_info_by_topic(f"{ns}/fused_image")
    assert [s.qos_profile.reliability for s in subs] == [ReliabilityPolicy.BEST_EFFORT]
    assert [p.qos_profile.reliability for p in pubs] == [ReliabilityPolicy.RELIABLE]
    # discovery does not carry the history depth: read it from the override parameter
    depth = f"qos_overrides.{ns}/thermal/image_raw.subscription.depth"
    assert default.node.get_parameter(depth).value == 5
    assert default.node.describe_parameter(
        f"qos_overrides.{ns}/thermal/image_raw.subscription.reliability"
    ).read_only


def test_qos_overrides_from_a_parameter_file(session, tiny_checkpoint_files, tmp_path):
    ns = f"/qos{next(_count)}"
    params = tmp_path / "qos.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n"
        f"    autoencoder_weights: {tiny_checkpoint_files[0]}\n"
        "    device: cpu\n"
        "    qos_overrides:\n"
        f"      {ns}/thermal/image_raw:\n"
        "        subscription:\n"
        "          reliability: reliable\n"
        "          depth: 3\n"
        f"      {ns}/fused_image:\n"
        "        publisher:\n"
        "          reliability: best_effort\n"
    )
    node = session.add(
        FusionNode(
            namespace=ns,
            context=session.context,
            cli_args=["--ros-args", "--params-file", str(params)],
        )
    )
    probe = session.add(Node(f"qos_probe{next(_count)}", context=session.context))
    try:
        assert node.state == "active", node.report.config_error
        assert wait_for(lambda: probe.get_subscriptions_info_by_topic(f"{ns}/thermal/image_raw"))
        (sub,) = probe.get_subscriptions_info_by_topic(f"{ns}/thermal/image_raw")
        assert sub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
        depth = f"qos_overrides.{ns}/thermal/image_raw.subscription.depth"
        assert node.get_parameter(depth).value == 3
        (vis,) = probe.get_subscriptions_info_by_topic(f"{ns}/visible/image_raw")
        assert vis.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT  # untouched
        (pub,) = probe.get_publishers_info_by_topic(f"{ns}/fused_image")
        assert pub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    finally:
        session.remove(probe)
        session.remove(node)


def test_a_bogus_qos_override_is_a_clear_configure_error(session, tiny_checkpoint_files):
    ns = f"/qosbad{next(_count)}"
    node = session.add(
        FusionNode(
            namespace=ns,
            context=session.context,
            parameter_overrides=[
                Parameter("autoencoder_weights", value=tiny_checkpoint_files[0]),
                Parameter("device", value="cpu"),
                Parameter(f"qos_overrides.{ns}/fused_image.publisher.reliability", value="bogus"),
            ],
        )
    )
    try:
        assert node.state == "unconfigured"
        assert "reliability" in node.report.config_error and "bogus" in node.report.config_error
    finally:
        session.remove(node)


def test_set_parameters_over_dds_cannot_delete_or_retype(rig):
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    r = rig()
    client = r.tester.create_client(
        SetParameters, f"{r.node.get_fully_qualified_name()}/set_parameters"
    )

    def set_one(name, value: ParameterValue):
        request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=value)])
        return _call(r.tester, client, request).results[0]

    unset = set_one("mask_threshold", ParameterValue(type=ParameterType.PARAMETER_NOT_SET))
    assert not unset.successful and "cannot be undeclared" in unset.reason
    as_bool = set_one(
        "mask_threshold", ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)
    )
    assert not as_bool.successful
    good = set_one(
        "mask_threshold", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=0.3)
    )
    assert good.successful and r.node.pipeline.config.mask_threshold == 0.3


# --- the services as an integrator uses them -------------------------------------------------


def test_every_parameter_answers_get_parameters_as_ros2_param_dump_asks(rig):
    """list_parameters, then get_parameters of every name: one value each, none unset."""
    from rcl_interfaces.msg import ParameterType
    from rcl_interfaces.srv import GetParameters, ListParameters

    r = rig()
    fqn = r.node.get_fully_qualified_name()
    listing = _call(
        r.tester,
        r.tester.create_client(ListParameters, f"{fqn}/list_parameters"),
        ListParameters.Request(),
    )
    names = list(listing.result.names)
    ours = {s.name for s in node_settings()}
    assert ours <= set(names) and "homography" in names, ours - set(names)
    got = _call(
        r.tester,
        r.tester.create_client(GetParameters, f"{fqn}/get_parameters"),
        GetParameters.Request(names=names),
    )
    assert len(got.values) == len(names)  # rclpy answers [] if a single name is unset
    values = dict(zip(names, got.values))
    unset = [n for n, v in values.items() if v.type == ParameterType.PARAMETER_NOT_SET]
    assert unset == []
    homography = values["homography"]
    assert homography.type == ParameterType.PARAMETER_DOUBLE_ARRAY
    assert list(homography.double_array_value) == []
    assert values["mask_threshold"].type == ParameterType.PARAMETER_STRING  # "" = unset
    assert values["diagnostic_updater.period"].double_value == 0.2


def test_a_bad_start_up_value_is_fixed_with_param_set_and_configure_without_a_restart(
    session, tiny_checkpoint_files
):
    """device:=gpu0 -> set device cpu over set_parameters -> configure by id -> active, fusing."""
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    r = Rig(session, tiny_checkpoint_files, wait_subscribed=False, device="gpu0")
    try:
        m = Manager(r.tester, r.fqn)
        assert m.state() == "unconfigured"
        assert "device: 'gpu0' is not auto, cpu, cuda or cuda:N" in r.node.report.config_error
        client = r.tester.create_client(SetParameters, f"{r.fqn}/set_parameters")

        def set_string(name, text):
            value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=text)
            request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=value)])
            return _call(r.tester, client, request).results[0]

        refused = set_string("device", "gpu1")  # still checked while unconfigured
        assert not refused.successful and "not auto, cpu, cuda or cuda:N" in refused.reason
        assert set_string("device", "cpu").successful
        assert m.transition(Transition.TRANSITION_CONFIGURE)
        assert m.state() == "active"  # autostart finishes its walk after the fix
        r.wait_discovery()
        r.pair(1 * SEC)
        assert r.wait_outputs(1)
        assert r.wait_status("fusion", lambda s: s.level == DiagnosticStatus.OK)
        # while active a start-up parameter is refused, with the way to change it
        active = set_string("device", "cpu")
        assert not active.successful
        assert "start-up parameter" in active.reason and "deactivate, then cleanup" in (
            active.reason
        )
        assert m.transition(Transition.TRANSITION_DEACTIVATE)
        inactive = set_string("input_transport", "compressed")
        assert not inactive.successful and "it is inactive" in inactive.reason
        assert r.node.get_parameter("input_transport").value == "raw"
    finally:
        r.close()


def test_start_up_values_are_read_again_at_configure(rig):
    r = rig(autostart=False, wait_subscribed=False)
    m = Manager(r.tester, r.fqn)
    assert r.node.set_parameters([Parameter("process_width", value=32)])[0].successful
    assert r.node.set_parameters([Parameter("process_height", value=24)])[0].successful
    assert m.transition(Transition.TRANSITION_CONFIGURE)
    assert r.node.preparer.size == (32, 24)
    assert m.transition(Transition.TRANSITION_ACTIVATE)
    r.wait_discovery()
    r.pair(1 * SEC)
    assert r.wait_outputs(1)
    assert (r.fused[0].width, r.fused[0].height) == (32, 24)


def test_an_invalid_lifecycle_request_is_refused_and_the_node_keeps_fusing(rig):
    r = rig()
    client = r.tester.create_client(ChangeState, f"{r.fqn}/change_state")
    m = Manager(r.tester, r.fqn)
    for transition in (
        Transition(id=Transition.TRANSITION_ACTIVATE),  # by id, while active: rclpy raised
        Transition(id=Transition.TRANSITION_CONFIGURE),
        Transition(id=99),  # no such transition
        Transition(label="activate"),  # by label rclpy itself refused
    ):
        response = _call(r.tester, client, ChangeState.Request(transition=transition))
        assert response.success is False, transition
        assert m.state() == "active"  # the node and its services are alive
    r.pair(1 * SEC)
    assert r.wait_outputs(1)
    assert r.session.errors == []  # nothing raised out of the service callback
