"""ROS-free decision core: values, constraints, rules, overrides, risk and audit.

Nothing under this package imports rclpy or logs: it returns decisions with their
justification and raises errors that carry the offending value.
"""
