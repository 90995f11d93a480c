//! The options of `block` on network security groups: `addresses`, `ports`, `protocol`,
//! `direction` and `convert_allow`.

use contain_core::{OptionProblem, check_cidr, is_template};
use serde_json::{Map, Value};

use crate::nsg_model::Direction;

pub(crate) const OPTION_KEYS: &[&str] = &["addresses", "ports", "protocol", "direction", "convert_allow"];

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockOptions {
    /// CIDRs; a bare address is taken as /32 or /128.
    pub(crate) addresses: Vec<String>,
    /// Port ranges as ARM writes them (`22`, `8000-8080`); empty means every port.
    pub(crate) ports: Vec<String>,
    /// `*`, `Tcp` or `Udp`.
    pub(crate) protocol: String,
    pub(crate) directions: Vec<Direction>,
    /// Whether an allow rule that no deny can outrank may be turned into a deny.
    pub(crate) convert_allow: bool,
}

pub(crate) fn address(value: &Value) -> Result<String, String> {
    let text = value.as_str().ok_or_else(|| format!("invalid address {value}: expected a string such as 203.0.113.7 or 203.0.113.0/24"))?.trim();
    let cidr = if text.contains('/') {
        text.to_string()
    } else if text.contains(':') {
        format!("{text}/128")
    } else {
        format!("{text}/32")
    };
    check_cidr(&cidr)?;
    Ok(cidr)
}

fn port(value: &Value) -> Result<String, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => return Err(format!("invalid port {other}: expected a number such as 22 or a range such as \"8000-8080\"")),
    };
    let (from, to) = text.split_once('-').unwrap_or((&text, &text));
    let parse = |s: &str| s.trim().parse::<u32>().ok().filter(|p| (0..=65535).contains(p));
    match (parse(from), parse(to)) {
        (Some(from), Some(to)) if from <= to => Ok(if from == to { from.to_string() } else { format!("{from}-{to}") }),
        _ => Err(format!("invalid port `{text}`: expected a number from 0 to 65535 or a range such as \"8000-8080\"")),
    }
}

/// Parses the options, collecting every problem. A templated value is checked for presence only.
pub(crate) fn parse(options: &Map<String, Value>) -> Result<BlockOptions, Vec<OptionProblem>> {
    let mut problems = crate::options::unknown_keys(options, OPTION_KEYS);
    let mut problem = |key: &str, message: String| problems.push(OptionProblem { key: Some(key.to_string()), message });


    let mut addresses = Vec::new();
    match options.get("addresses") {
        None => problem("addresses", "`addresses` is required: a list of addresses or CIDRs to block".to_string()),
        Some(value) if is_template(value) => {}
        Some(Value::Array(items)) if !items.is_empty() => {
            for item in items {
                match address(item) {
                    Ok(cidr) => addresses.push(cidr),
                    Err(message) => problem("addresses", message),
                }
            }
        }
        Some(other) => problem("addresses", format!("invalid addresses {other}: expected a non-empty list such as [\"203.0.113.7\"]")),
    }

    let mut ports = Vec::new();
    match options.get("ports") {
        None => {}
        Some(value) if is_template(value) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match port(item) {
                    Ok(range) => ports.push(range),
                    Err(message) => problem("ports", message),
                }
            }
        }
        Some(other) => problem("ports", format!("invalid ports {other}: expected a list such as [22, \"8000-8080\"]")),
    }

    let protocol = match options.get("protocol").filter(|v| !is_template(v)).map(|v| v.as_str().unwrap_or("?").to_ascii_lowercase()) {
        None => "*",
        Some(p) if p == "any" || p == "*" || p == "all" => "*",
        Some(p) if p == "tcp" => "Tcp",
        Some(p) if p == "udp" => "Udp",
        Some(other) => {
            problem("protocol", format!("invalid protocol `{other}`: valid values are any, tcp, udp"));
            "*"
        }
    };

    let directions = match options.get("direction").filter(|v| !is_template(v)).map(|v| v.as_str().unwrap_or("?")).unwrap_or("both") {
        "inbound" => vec![Direction::Inbound],
        "outbound" => vec![Direction::Outbound],
        "both" => vec![Direction::Inbound, Direction::Outbound],
        other => {
            problem("direction", format!("invalid direction `{other}`: valid values are inbound, outbound, both"));
            Vec::new()
        }
    };

    let convert_allow = crate::options::flag(options, "convert_allow", false, &mut problems);

    if problems.is_empty() {
        addresses.sort();
        addresses.dedup();
        Ok(BlockOptions { addresses, ports, protocol: protocol.to_string(), directions, convert_allow })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_and_bare_addresses() {
        let parsed = parse(&options(json!({ "addresses": ["203.0.113.7", "2001:db8::1", "198.51.100.0/24"] }))).unwrap();
        assert_eq!(parsed.addresses, ["198.51.100.0/24", "2001:db8::1/128", "203.0.113.7/32"]);
        assert_eq!(parsed.protocol, "*");
        assert_eq!(parsed.directions, [Direction::Inbound, Direction::Outbound]);
        assert!(!parsed.convert_allow);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let problems = parse(&options(json!({ "addresses": ["10.0.0.1/8"], "ports": ["70000"], "direction": "up", "protocol": "gre", "colour": 1 }))).unwrap_err();
        let keys: Vec<_> = problems.iter().filter_map(|p| p.key.as_deref()).collect();
        for key in ["colour", "addresses", "ports", "protocol", "direction"] {
            assert!(keys.contains(&key), "{key} missing from {problems:?}");
        }
        assert!(parse(&options(json!({}))).unwrap_err()[0].message.contains("required"));
    }
}
