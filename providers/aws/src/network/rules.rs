//! The `addresses`, `ports`, `protocol` and `direction` options shared by the block actions.

use contain_core::{OptionProblem, check_cidr};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub(crate) fn egress(self) -> bool {
        self == Direction::Outbound
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// A port range, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ports {
    pub(crate) from: i32,
    pub(crate) to: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockRules {
    pub(crate) addresses: Vec<String>,
    /// Empty means every port.
    pub(crate) ports: Vec<Ports>,
    /// `-1` (all), `6` (TCP) or `17` (UDP), as EC2 numbers protocols.
    pub(crate) protocol: String,
    pub(crate) directions: Vec<Direction>,
}

pub(crate) const OPTION_KEYS: &[&str] = &["addresses", "ports", "protocol", "direction"];

fn parse_ports(value: &Value) -> Result<Ports, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => return Err(format!("invalid port {other}: expected a number such as 22 or a range such as \"8000-8080\"")),
    };
    let (from, to) = text.split_once('-').unwrap_or((&text, &text));
    let parse = |s: &str| s.trim().parse::<i32>().ok().filter(|p| (0..=65535).contains(p));
    match (parse(from), parse(to)) {
        (Some(from), Some(to)) if from <= to => Ok(Ports { from, to }),
        _ => Err(format!("invalid port `{text}`: expected a number from 0 to 65535 or a range such as \"8000-8080\"")),
    }
}

/// Parses the options, collecting every problem. `extra` lists the action's own option keys.
pub(crate) fn parse_block_rules(options: &Map<String, Value>, extra: &[&str]) -> Result<BlockRules, Vec<OptionProblem>> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| problems.push(OptionProblem { key: Some(key.to_string()), message });

    for key in options.keys() {
        if !OPTION_KEYS.contains(&key.as_str()) && !extra.contains(&key.as_str()) {
            let mut valid: Vec<&str> = OPTION_KEYS.to_vec();
            valid.extend(extra);
            problem(key, format!("unknown option `{key}`: valid options are {}", valid.join(", ")));
        }
    }

    let mut addresses = Vec::new();
    match options.get("addresses") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for item in items {
                match item.as_str() {
                    // Templated values are checked once they are filled in.
                    Some(text) if text.contains("${{") => addresses.push(text.to_string()),
                    Some(text) => match check_cidr(text) {
                        Ok(()) => addresses.push(text.to_string()),
                        Err(message) => problem("addresses", message),
                    },
                    None => problem("addresses", format!("invalid address {item}: expected a CIDR such as 203.0.113.0/24")),
                }
            }
        }
        Some(Value::String(text)) if text.contains("${{") => addresses.push(text.clone()),
        _ => problem("addresses", "`addresses` is required: a list of CIDRs such as [203.0.113.0/24, 2001:db8::/32]".to_string()),
    }

    let mut ports = Vec::new();
    match options.get("ports") {
        None => {}
        Some(value) if contain_core::is_template(value) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match parse_ports(item) {
                    Ok(range) => ports.push(range),
                    Err(message) => problem("ports", message),
                }
            }
        }
        Some(other) => match parse_ports(other) {
            Ok(range) => ports.push(range),
            Err(message) => problem("ports", message),
        },
    }

    let default_protocol = if ports.is_empty() { "all" } else { "tcp" };
    let protocol_option = options.get("protocol").filter(|v| !contain_core::is_template(v));
    let protocol = match protocol_option.map(|v| v.as_str().unwrap_or("?")).unwrap_or(default_protocol) {
        "all" => "-1",
        "tcp" => "6",
        "udp" => "17",
        other => {
            problem("protocol", format!("invalid protocol `{other}`: valid values are all, tcp, udp"));
            "-1"
        }
    };
    if protocol == "-1" && !ports.is_empty() {
        problem("ports", "`ports` needs protocol tcp or udp".to_string());
    }

    let direction_option = options.get("direction").filter(|v| !contain_core::is_template(v));
    let directions = match direction_option.map(|v| v.as_str().unwrap_or("?")).unwrap_or("both") {
        "inbound" => vec![Direction::Inbound],
        "outbound" => vec![Direction::Outbound],
        "both" => vec![Direction::Inbound, Direction::Outbound],
        other => {
            problem("direction", format!("invalid direction `{other}`: valid values are inbound, outbound, both"));
            Vec::new()
        }
    };

    if problems.is_empty() { Ok(BlockRules { addresses, ports, protocol: protocol.to_string(), directions }) } else { Err(problems) }
}

pub(crate) fn is_ipv6(cidr: &str) -> bool {
    cidr.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(value: Value) -> Map<String, Value> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn defaults_cover_all_ports_both_directions() {
        let rules = parse_block_rules(&options(json!({ "addresses": ["203.0.113.0/24"] })), &[]).unwrap();
        assert_eq!(rules.protocol, "-1");
        assert!(rules.ports.is_empty());
        assert_eq!(rules.directions, [Direction::Inbound, Direction::Outbound]);
    }

    #[test]
    fn ports_imply_tcp() {
        let rules = parse_block_rules(&options(json!({ "addresses": ["10.0.0.0/8"], "ports": [22, "8000-8080"], "direction": "inbound" })), &[]).unwrap();
        assert_eq!(rules.protocol, "6");
        assert_eq!(rules.ports, [Ports { from: 22, to: 22 }, Ports { from: 8000, to: 8080 }]);
    }

    #[test]
    fn every_problem_is_reported() {
        let problems = parse_block_rules(&options(json!({ "addresses": ["10.0.0.1/8"], "ports": ["70000"], "direction": "up", "colour": 1 })), &[]).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
