"""Start the moto server on 127.0.0.1 with corrections that make it behave as AWS does.

Corrections, each for a moto 5.2.5 behaviour that contain's tests would otherwise see:

- moto reports an attached network interface's security groups as the union of its own groups
  and the instance's groups (`NetworkInterface.group_set` in
  moto/ec2/models/elastic_network_interfaces.py). EC2 reports only the interface's own groups.
  The patch returns the interface's own groups, so a group change on one interface is seen as
  EC2 would show it.

The test suite checks that this correction is in effect (test `moto_reports_interface_groups_only`).
"""

import sys

from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.server import main


def interface_own_groups(self):
    return self._group_set


NetworkInterface.group_set = property(interface_own_groups)

if __name__ == "__main__":
    host_and_port = sys.argv[1:]
    main(["--host", "127.0.0.1", *host_and_port])
