"""Start the moto server on 127.0.0.1 with corrections that make it behave as AWS does.

Corrections, each for a moto 5.2.5 behaviour that contain's tests would otherwise see:

- moto reports an attached network interface's security groups as the union of its own groups
  and the instance's groups (`NetworkInterface.group_set` in
  moto/ec2/models/elastic_network_interfaces.py). EC2 reports only the interface's own groups.
  The patch returns the interface's own groups, so a group change on one interface is seen as
  EC2 would show it.

The test suite checks that this correction is in effect (test `moto_reports_interface_groups_only`).

- moto names a permission set `arn:aws:sso:::instance/ssoins-…/ps-…`; IAM Identity Center
  names it `arn:aws:sso:::permissionSet/ssoins-…/ps-…`. The patch generates the AWS form.

One test hook, because moto offers no way to age an access key:

- moto sets an access key's creation date to the time of the call, and its last-used date only
  when the key signs a request, so no key can look unused for 400 days. When the IAM user has the
  tag `contain-test:key-age-days` = N, a key created for that user gets a creation date N days in
  the past. Only tests set that tag.
"""

import datetime
import sys

from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.iam.models import User
from moto.moto_api._internal import mock_random
from moto.ssoadmin.models import PermissionSet
from moto.server import main


def interface_own_groups(self):
    return self._group_set


NetworkInterface.group_set = property(interface_own_groups)

KEY_AGE_TAG = "contain-test:key-age-days"
create_access_key = User.create_access_key


def create_aged_access_key(self, *args, **kwargs):
    key = create_access_key(self, *args, **kwargs)
    for tag in self.tags or []:
        if tag.get("Key") == KEY_AGE_TAG:
            key.create_date = key.create_date - datetime.timedelta(days=int(tag["Value"]))
    return key


User.create_access_key = create_aged_access_key


def permission_set_arn(instance_arn):
    partition, instance = instance_arn.split(":")[1], instance_arn.rsplit("/", 1)[-1]
    suffix = mock_random.get_random_string(length=16).lower()
    return "arn:{}:sso:::permissionSet/{}/ps-{}".format(partition, instance, suffix)


PermissionSet.generate_id = staticmethod(permission_set_arn)

if __name__ == "__main__":
    host_and_port = sys.argv[1:]
    main(["--host", "127.0.0.1", *host_and_port])
