//! The moto test estate of contain's end-to-end tests and demo.
//!
//! - [`moto_endpoint`] returns the moto server's URL and refuses anything but a loopback host,
//!   so no test can reach a real AWS endpoint.
//! - [`fresh_account`] gives each test an AWS account of its own in moto (by assuming a role in
//!   a new account id), so tests running at once never see each other's resources.
//! - [`build`] creates the estate: a VPC, two subnets, security groups with rules, an instance
//!   with one interface and an instance with two interfaces in different subnets, each interface
//!   with two groups.
//! - [`describe`] is a full, ordered description of the EC2 state that contain may change, for
//!   before-and-after comparisons.

mod describe;
mod iam;
mod limits;
mod proxy;

use anyhow::{Context, bail};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, ResourceType, Tag, TagSpecification, UserIdGroupPair};
use aws_types::region::Region;
use serde::{Deserialize, Serialize};

pub use describe::describe;
pub use iam::{IamEstate, build_iam, describe_iam};
pub use limits::{ActionCounts, BucketLimit, CloudLimits};
pub use proxy::{Effect, Fault, FaultProxy, SeenRequest};

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// Returns the moto server's URL, from `CONTAIN_TEST_MOTO_URL` or `AWS_ENDPOINT_URL`.
///
/// Refuses any host but 127.0.0.1, localhost or ::1, so a misconfigured environment cannot send
/// test traffic to a real AWS endpoint.
pub fn moto_endpoint() -> anyhow::Result<String> {
    let url = std::env::var("CONTAIN_TEST_MOTO_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .context("CONTAIN_TEST_MOTO_URL is not set: start moto with scripts/moto.sh start and run the tests through scripts/test.sh")?;
    check_loopback(&url)?;
    Ok(url)
}

/// Fails unless `url` is plain HTTP to a loopback address.
pub fn check_loopback(url: &str) -> anyhow::Result<()> {
    let rest = url.strip_prefix("http://").with_context(|| format!("test endpoint {url} is not http://127.0.0.1:PORT"))?;
    let host_port = rest.split('/').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.rsplit_once(':').map(|(h, _)| h).unwrap_or(host_port),
    };
    if !matches!(host, "127.0.0.1" | "localhost" | "::1") {
        bail!("refusing to run: test endpoint {url} is not a loopback address, and tests must never reach a real AWS host");
    }
    Ok(())
}

/// Credentials of an account of its own in moto.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

impl Account {
    /// Lists the environment variables that make the AWS SDK (and so `contain`) use this account
    /// against moto.
    pub fn env(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
            ("AWS_SESSION_TOKEN", self.session_token.clone()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT_URL", endpoint.to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("AWS_CONFIG_FILE", "/dev/null".to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
        ]
    }

    pub async fn sdk_config(&self, endpoint: &str) -> SdkConfig {
        let credentials = aws_sdk_ec2::config::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            Some(self.session_token.clone()),
            None,
            "contain-test-estate",
        );
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new(REGION))
            .credentials_provider(credentials)
            .load()
            .await
    }
}

/// Creates an account of its own in moto: moto scopes the credentials of an assumed role to the
/// role's account, which need not exist.
pub async fn fresh_account(endpoint: &str) -> anyhow::Result<Account> {
    check_loopback(endpoint)?;
    let bootstrap = aws_sdk_ec2::config::Credentials::new("AKIAIOSFODNN7EXAMPLE", "bootstrap-secret", None, None, "contain-test-estate");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(bootstrap)
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&config);

    // Unique across the tests of one process (the counter) and across processes (time and pid).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let sequence = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
    let seed = nanos / 1000 ^ (u64::from(std::process::id()) << 20) ^ (sequence << 40);
    let account_id = format!("{:012}", (seed.wrapping_mul(6_364_136_223_846_793_005) >> 20) % 1_000_000_000_000);
    let assumed = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account_id}:role/contain-test"))
        .role_session_name("contain-test")
        .send()
        .await
        .context("AssumeRole against moto failed")?;
    let credentials = assumed.credentials().context("AssumeRole returned no credentials")?;
    Ok(Account {
        account_id,
        access_key_id: credentials.access_key_id().to_string(),
        secret_access_key: credentials.secret_access_key().to_string(),
        session_token: credentials.session_token().to_string(),
    })
}

/// The ids of what [`build`] created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Estate {
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    /// Groups by role: web, ssh, db, admin.
    pub groups: std::collections::BTreeMap<String, String>,
    /// The instance with one network interface.
    pub single: Instance,
    /// The instance with two network interfaces in different subnets.
    pub double: Instance,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    pub instance_id: String,
    /// Interface ids in device-index order.
    pub interface_ids: Vec<String>,
}

/// Builds the estate in the account behind `ec2`.
pub async fn build(ec2: &aws_sdk_ec2::Client) -> anyhow::Result<Estate> {
    let vpc = ec2.create_vpc().cidr_block("10.20.0.0/16").send().await.context("CreateVpc")?;
    let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).context("CreateVpc returned no id")?.to_string();

    let mut subnet_ids = Vec::new();
    for cidr in ["10.20.1.0/24", "10.20.2.0/24"] {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(cidr)
            .availability_zone(format!("{REGION}a"))
            .send()
            .await
            .context("CreateSubnet")?;
        subnet_ids.push(subnet.subnet().and_then(|s| s.subnet_id()).context("CreateSubnet returned no id")?.to_string());
    }

    let mut groups = std::collections::BTreeMap::new();
    for (role, port, cidr) in [("web", 443, "0.0.0.0/0"), ("ssh", 22, "10.1.0.0/16"), ("db", 5432, ""), ("admin", 3389, "10.2.0.0/16")] {
        let group = ec2
            .create_security_group()
            .vpc_id(&vpc_id)
            .group_name(format!("estate-{role}"))
            .description(format!("estate {role} servers"))
            .send()
            .await
            .context("CreateSecurityGroup")?;
        let group_id = group.group_id().context("CreateSecurityGroup returned no id")?.to_string();
        let mut rule = IpPermission::builder().ip_protocol("tcp").from_port(port).to_port(port);
        rule = if cidr.is_empty() {
            rule.user_id_group_pairs(UserIdGroupPair::builder().group_id(&groups["web"]).build())
        } else {
            rule.ip_ranges(IpRange::builder().cidr_ip(cidr).build())
        };
        ec2.authorize_security_group_ingress()
            .group_id(&group_id)
            .ip_permissions(rule.build())
            .send()
            .await
            .context("AuthorizeSecurityGroupIngress")?;
        groups.insert(role.to_string(), group_id);
    }

    let image_id = any_image(ec2).await?;
    let single = run_instance(ec2, &image_id, &subnet_ids[0], [&groups["web"], &groups["ssh"]], "estate-single").await?;
    let mut double = run_instance(ec2, &image_id, &subnet_ids[0], [&groups["web"], &groups["db"]], "estate-double").await?;

    let second = ec2
        .create_network_interface()
        .subnet_id(&subnet_ids[1])
        .groups(&groups["ssh"])
        .groups(&groups["admin"])
        .description("estate-double second interface")
        .send()
        .await
        .context("CreateNetworkInterface")?;
    let second_id = second.network_interface().and_then(|n| n.network_interface_id()).context("no interface id")?.to_string();
    ec2.attach_network_interface()
        .network_interface_id(&second_id)
        .instance_id(&double.instance_id)
        .device_index(1)
        .send()
        .await
        .context("AttachNetworkInterface")?;
    double.interface_ids.push(second_id);

    Ok(Estate { vpc_id, subnet_ids, groups, single, double })
}

/// Returns the id of an x86_64 image that moto offers.
pub async fn any_image(ec2: &aws_sdk_ec2::Client) -> anyhow::Result<String> {
    let images = ec2
        .describe_images()
        .filters(Filter::builder().name("architecture").values("x86_64").build())
        .send()
        .await
        .context("DescribeImages")?;
    images.images().iter().find_map(|i| i.image_id().map(str::to_string)).context("moto offers no x86_64 image")
}

async fn run_instance(ec2: &aws_sdk_ec2::Client, image_id: &str, subnet_id: &str, groups: [&String; 2], name: &str) -> anyhow::Result<Instance> {
    let output = ec2
        .run_instances()
        .image_id(image_id)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet_id)
        .security_group_ids(groups[0])
        .security_group_ids(groups[1])
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value(name).build())
                .build(),
        )
        .send()
        .await
        .context("RunInstances")?;
    let instance = output.instances().first().context("RunInstances returned no instance")?;
    let interfaces = instance
        .network_interfaces()
        .iter()
        .filter_map(|eni| eni.network_interface_id().map(str::to_string))
        .collect();
    Ok(Instance { instance_id: instance.instance_id().context("no instance id")?.to_string(), interface_ids: interfaces })
}

#[cfg(test)]
mod tests {
    use super::check_loopback;

    #[test]
    fn loopback_endpoints_pass() {
        for url in ["http://127.0.0.1:5055", "http://localhost:5000/", "http://[::1]:5055"] {
            assert!(check_loopback(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn real_endpoints_are_refused() {
        for url in ["https://ec2.us-east-1.amazonaws.com", "http://ec2.us-east-1.amazonaws.com", "http://10.0.0.5:5055", "http://169.254.169.254"] {
            let error = check_loopback(url).unwrap_err().to_string();
            assert!(error.contains(url) || error.contains("not http://"), "{url}: {error}");
        }
    }
}
