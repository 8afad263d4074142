"""ROS 2 nodes of SOSMaskFuse: the fusion node and the synthetic cameras."""
