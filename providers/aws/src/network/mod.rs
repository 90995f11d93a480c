//! Network containment: deny entries in network ACLs (`block` on a VPC or subnets), deny-all
//! ACLs (`isolate` on a VPC or subnets), and removing address ranges from security group rules
//! (`block` on a security group).

mod acl;
mod block_acl;
mod block_group;
mod isolate_subnets;
mod rules;
mod target;

pub(crate) use block_acl::BlockAddresses;
pub(crate) use block_group::BlockInGroup;
pub(crate) use isolate_subnets::IsolateSubnets;
pub(crate) use target::{SECURITY_GROUP, SUBNET, VPC, parse_ec2_resource};
